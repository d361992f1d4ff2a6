// Builds the dashboard into static/: web/main.js (with uPlot and the CSS) bundled by esbuild
// into static/app.js and static/app.css, and web/index.html copied beside them (its links to
// the bundle versioned by content); the clinic hub's page likewise from web/hub/ into
// static/hub.js, static/hub.css and static/hub.html.
// Offline once `npm ci` has run. Usage: npm run build

import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'static');

await mkdir(out, { recursive: true });
const options = {
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  minify: true,
  sourcemap: 'linked',
  logLevel: 'warning',
  metafile: true,
};
const hub = await build({ ...options, entryPoints: [join(here, 'web', 'hub', 'hub.js')], outfile: join(out, 'hub.js') });
const result = await build({
  entryPoints: [join(here, 'web', 'main.js')],
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  minify: true,
  sourcemap: 'linked',
  outfile: join(out, 'app.js'),
  logLevel: 'warning',
  metafile: true,
});
// index.html is served uncached; the bundle's names carry a hash of their content so a
// phone never runs an old app.js against a new page after an upgrade.
let html = await readFile(join(here, 'web', 'index.html'), 'utf8');
for (const name of ['app.js', 'app.css']) {
  const hash = createHash('sha256').update(await readFile(join(out, name))).digest('hex').slice(0, 12);
  html = html.replace(`/static/${name}"`, `/static/${name}?v=${hash}"`);
}
await writeFile(join(out, 'index.html'), html);
let hubHtml = await readFile(join(here, 'web', 'hub', 'hub.html'), 'utf8');
for (const name of ['hub.js', 'hub.css']) {
  const hash = createHash('sha256').update(await readFile(join(out, name))).digest('hex').slice(0, 12);
  hubHtml = hubHtml.replace(`/static/${name}"`, `/static/${name}?v=${hash}"`);
}
await writeFile(join(out, 'hub.html'), hubHtml);
const sizes = Object.entries({ ...result.metafile.outputs, ...hub.metafile.outputs })
  .filter(([file]) => !file.endsWith('.map'))
  .map(([file, info]) => `${file.split('/').pop()} ${(info.bytes / 1024).toFixed(1)} kB`);
console.log(`dashboard built into static/: ${sizes.join(', ')}, index.html, hub.html`);
