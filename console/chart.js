import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { useConsole } from './context.js';
import { html } from './html.js';

const COLORS = ['#1f5fa8', '#b42318', '#1a7f37', '#8a5a00', '#6e40c9', '#0e7c86'];

/** Noon UTC of a YYYY-MM-DD day, in seconds: what uPlot puts on its time axis. */
export const dayToSeconds = (day) => Date.parse(`${day}T12:00:00Z`) / 1000;

/**
 * A small uPlot chart. `days` are the x values (YYYY-MM-DD); `series` is [{ label, values }] with
 * one value per day (null for none). `bars` draws bars instead of lines. The numbers are also in a
 * table for screen readers (the canvas is not readable).
 */
export function Chart({ title, days, series, bars = false, format = String, height = 220 }) {
  const { t } = useConsole();
  const box = useRef(null);
  useEffect(() => {
    if (!box.current || days.length === 0) return undefined;
    const width = Math.max(280, box.current.clientWidth);
    const paths = bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
    const plot = new uPlot(
      {
        width,
        height,
        legend: { show: true },
        axes: [{}, { values: (_, ticks) => ticks.map(format), size: 70 }],
        series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], fill: bars ? `${COLORS[i % COLORS.length]}55` : undefined, width: 2, paths, points: { show: days.length < 3 } }))],
        scales: { x: { time: true } },
      },
      [days.map(dayToSeconds), ...series.map((s) => s.values)],
      box.current,
    );
    return () => plot.destroy();
  }, [JSON.stringify(days), JSON.stringify(series), bars, height]);

  return html`<figure class="chart card">
    <figcaption>${title}</figcaption>
    ${days.length === 0 ? html`<p class="muted">${t('chart.empty')}</p>` : html`<div ref=${box} aria-hidden="true"></div>`}
    <details>
      <summary>${title}: data</summary>
      <table class="table">
        <thead><tr><th scope="col">day</th>${series.map((s) => html`<th scope="col">${s.label}</th>`)}</tr></thead>
        <tbody>${days.map((day, i) => html`<tr><td>${day}</td>${series.map((s) => html`<td>${s.values[i] === null ? '—' : format(s.values[i])}</td>`)}</tr>`)}</tbody>
      </table>
    </details>
  </figure>`;
}

/** Rows keyed by day and a label → the days (sorted) and one series per label. */
export function pivot(rows, { label, value }) {
  const days = [...new Set(rows.map((r) => r.day))].sort();
  const labels = [...new Set(rows.map(label))].sort();
  const series = labels.map((name) => ({ label: name, values: days.map((day) => rows.filter((r) => r.day === day && label(r) === name && value(r) !== null).reduce((sum, r) => (sum ?? 0) + value(r), null)) }));
  return { days, series };
}
