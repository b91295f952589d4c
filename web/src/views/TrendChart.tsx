import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface TrendPoint {
  time: number;
  value: number;
}

/**
 * A result's values over the years (uPlot on a canvas), with the reference range as dashed lines. The
 * canvas is described by its figure caption; the same values are in the results table for screen readers.
 */
export function TrendChart({ title, unit, points, low, high }: { title: string; unit: string; points: TrendPoint[]; low?: number; high?: number }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current || !points.length) return;
    const xs = points.map((p) => p.time / 1000);
    const data: uPlot.AlignedData = [xs, points.map((p) => p.value)];
    const series: uPlot.Series[] = [{}, { label: title, stroke: '#1b5e9e', width: 2, points: { show: true, size: 6 } }];
    if (low !== undefined) {
      data.push(xs.map(() => low));
      series.push({ label: 'Reference low', stroke: '#6b6b6b', dash: [4, 4], points: { show: false } });
    }
    if (high !== undefined) {
      data.push(xs.map(() => high));
      series.push({ label: 'Reference high', stroke: '#a33a00', dash: [4, 4], points: { show: false } });
    }
    const el = box.current;
    const width = () => Math.max(260, Math.min(900, el.clientWidth || 600));
    const plot = new uPlot({ width: width(), height: 260, series, axes: [{}, { label: unit }], legend: { show: true }, cursor: { show: true } }, data, el);
    // Follows the page's width (tablet, window resized).
    const resize = new ResizeObserver(() => plot.setSize({ width: width(), height: 260 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [title, unit, points, low, high]);
  const summary = points.length
    ? `${title}: ${points.length} values from ${new Date(points[0].time).toISOString().slice(0, 10)} to ${new Date(points[points.length - 1].time).toISOString().slice(0, 10)}, latest ${points[points.length - 1].value} ${unit}${low !== undefined || high !== undefined ? `; reference range ${low ?? ''}–${high ?? ''} ${unit}` : ''}`
    : `${title}: no values`;
  return (
    <figure class="trend">
      <div ref={box} role="img" aria-label={summary} />
      <figcaption>{summary}</figcaption>
    </figure>
  );
}
