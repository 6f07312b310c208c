import { useEffect, useRef } from 'preact/hooks';
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
    let plot = null;
    let gone = false;
    // Loaded with the first chart, not with the console: the overview draws none.
    import('uplot').then(({ default: uPlot }) => {
      if (!gone && box.current) plot = draw(uPlot, box.current, { days, series, format, height });
    });
    return () => {
      gone = true;
      plot?.destroy();
    };
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

/**
 * The last `count` days (YYYY-MM-DD) in `zone`, oldest first, today included: a chart's x axis,
 * days without data included. Data asked for since `count` × 24 h ago also covers a partial day
 * before the first of these: the charts leave it out rather than show a dip that is not real.
 */
export function lastDays(count, zone) {
  const format = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' });
  return Array.from({ length: count }, (_, i) => format.format(new Date(Date.now() - (count - 1 - i) * 86_400_000)));
}

function draw(uPlot, element, { days, series, format, height }) {
  return new uPlot(
    {
      width: Math.max(280, element.clientWidth),
      height,
      legend: { show: true },
      axes: [{}, { values: (_, ticks) => ticks.map(format), size: 96 }],
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: true, size: 6 }, spanGaps: false }))],
      scales: {
        // Half a day either side, so the first and last points are not on the edge.
        x: { time: true, range: () => [dayToSeconds(days[0]) - 43_200, dayToSeconds(days.at(-1)) + 43_200] },
        // From 0, so a small value does not look like a large one.
        y: { range: (_, __, max) => [0, max > 0 ? max * 1.15 : 1] },
      },
    },
    [days.map(dayToSeconds), ...series.map((s) => s.values)],
    element,
  );
}

/** Rows keyed by day and a label → one series per label over `days` (rows of other days are left out). */
export function pivot(rows, { label, value, days }) {
  const labels = [...new Set(rows.filter((r) => days.includes(r.day)).map(label))].sort();
  const series = labels.map((name) => ({ label: name, values: days.map((day) => rows.filter((r) => r.day === day && label(r) === name && value(r) !== null).reduce((sum, r) => (sum ?? 0) + value(r), null)) }));
  return { days, series };
}
