// tests/bench/pdf/bench.mjs — Chromium's side of tests/bench/run-pdf.
//
//   node bench.mjs SECONDS CASE=FILE.html [CASE=FILE.html ...]
//
// Launches Debian's chromium once through puppeteer-core (no browser
// download), keeps one page warm, and per PDF does what a Puppeteer-based
// invoice renderer does: page.setContent(html) then page.pdf({format: 'A4'}).
// One JSON line per case on stdout.
import { readFileSync } from 'node:fs';
import puppeteer from 'puppeteer-core';

const [secondsArg, ...cases] = process.argv.slice(2);
const seconds = Number(secondsArg || 5);
const executablePath = process.env.ML_CHROMIUM || '/usr/bin/chromium';

const browser = await puppeteer.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
try {
  const page = await browser.newPage();
  for (const c of cases) {
    const eq = c.indexOf('=');
    const name = c.slice(0, eq);
    const html = readFileSync(c.slice(eq + 1), 'utf8');
    const one = async () => {
      await page.setContent(html, { waitUntil: 'load' });
      return page.pdf({ format: 'A4', printBackground: true });
    };
    for (let i = 0; i < 5; i++) await one(); // warm up
    let n = 0;
    let bytes = 0;
    const t0 = process.hrtime.bigint();
    let elapsed = 0;
    while (elapsed < seconds) {
      const pdf = await one();
      bytes = pdf.length;
      n++;
      elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    }
    console.log(JSON.stringify({
      side: 'chromium',
      case: name,
      lines: 40,
      renders: n,
      seconds: Number(elapsed.toFixed(3)),
      pdfs_per_s: Number((n / elapsed).toFixed(2)),
      ms_per_pdf: Number(((elapsed * 1000) / n).toFixed(2)),
      bytes,
      browser: await browser.version(),
    }));
  }
} finally {
  await browser.close();
}
