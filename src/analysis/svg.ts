// Renders a vega-lite spec to an SVG string, headless (no browser, no
// canvas). Shared by `attnc analyze --svg` and the benchmark's plot.
import * as vega from 'vega';
import * as vl from 'vega-lite';

export async function vegaLiteToSvg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
