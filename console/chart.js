import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { useConsole } from './context.js';
import { html } from './html.js';

const COLORS = ['#1f5fa8', '#b42318', '#1a7f37', '#8a5a00', '#6e40c9', '#0e7c86'];

/** Noon UTC of a YYYY-MM-DD day, in seconds: what uPlot puts on its time axis. */
export const dayToSeconds = (day) => Date.parse(`${day}T12:00:00Z`) / 1000;

/**
 * A small uPlot chart. `days` are the x values (YYYY-MM-DD); `series` is [{ label, values }] with
 * one value per day (null for none), drawn as lines with points from 0. The numbers are also in a
 * table for screen readers (the canvas is not readable).
 */
export function Chart({ title, days, series, format = String, height = 220 }) {
  const { t } = useConsole();
  const box = useRef(null);
  const empty = series.every((s) => s.values.every((v) => !v));
  useEffect(() => {
    if (!box.current || empty) return undefined;
    const width = Math.max(280, box.current.clientWidth);
    const plot = new uPlot(
      {
        width,
        height,
        legend: { show: true },
        axes: [{}, { values: (_, ticks) => ticks.map(format), size: 70 }],
        series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: true, size: 6 }, spanGaps: false }))],
        // Half a day either side, so the first and last points are not on the edge.
        // From 0, so a small value does not look like a large one.
        scales: { x: { time: true, range: () => [dayToSeconds(days[0]) - 43_200, dayToSeconds(days.at(-1)) + 43_200] }, y: { range: (_, __, max) => [0, max > 0 ? max * 1.15 : 1] } },
      },
      [days.map(dayToSeconds), ...series.map((s) => s.values)],
      box.current,
    );
    return () => plot.destroy();
  }, [JSON.stringify(days), JSON.stringify(series), height]);

  return html`<figure class="chart card">
    <figcaption>${title}</figcaption>
    ${empty ? html`<p class="muted">${t('chart.empty')}</p>` : html`<div ref=${box} aria-hidden="true"></div>`}
    <details>
      <summary>${title}: data</summary>
      <table class="table">
        <thead><tr><th scope="col">day</th>${series.map((s) => html`<th scope="col">${s.label}</th>`)}</tr></thead>
        <tbody>${days.map((day, i) => html`<tr><td>${day}</td>${series.map((s) => html`<td>${s.values[i] === null ? '—' : format(s.values[i])}</td>`)}</tr>`)}</tbody>
      </table>
    </details>
  </figure>`;
}

/** The last `count` days (YYYY-MM-DD) in `zone`, oldest first: a chart's x axis, days without data included. */
export function lastDays(count, zone) {
  const format = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' });
  return Array.from({ length: count }, (_, i) => format.format(new Date(Date.now() - (count - 1 - i) * 86_400_000)));
}

/** Rows keyed by day and a label → the days (those given and those of the rows, sorted) and one series per label. */
export function pivot(rows, { label, value, days: window = [] }) {
  const days = [...new Set([...window, ...rows.map((r) => r.day)])].sort();
  const labels = [...new Set(rows.map(label))].sort();
  const series = labels.map((name) => ({ label: name, values: days.map((day) => rows.filter((r) => r.day === day && label(r) === name && value(r) !== null).reduce((sum, r) => (sum ?? 0) + value(r), null)) }));
  return { days, series };
}
