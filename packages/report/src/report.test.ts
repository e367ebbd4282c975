import { describe, expect, it } from 'vitest';
import { htmlTable, renderReport, textTable } from './index.js';

describe('report rendering', () => {
  it('text tables pad every column to its widest cell; numbers get 3 decimals', () => {
    expect(
      textTable(
        ['a', 'value'],
        [
          ['x', 1.23456],
          ['long name', 2],
        ],
      ),
    ).toBe(
      [
        '| a         | value |',
        '| --------- | ----- |',
        '| x         | 1.235 |',
        '| long name | 2     |',
      ].join('\n'),
    );
  });

  it('HTML tables escape their cells', () => {
    expect(htmlTable(['<b>'], [['a & "b"'], [0.5]])).toBe(
      '<table><tr><th>&lt;b&gt;</th></tr><tr><td>a &amp; &quot;b&quot;</td></tr><tr><td>0.5000</td></tr></table>',
    );
  });

  it('a report draws one SVG path per series with a point per finite value, and a bar per series', () => {
    const html = renderReport('run <1>', [
      {
        heading: 'curves',
        charts: [
          {
            title: 'loss',
            series: [
              {
                name: 'train',
                points: [
                  [1, 0.7],
                  [2, 0.5],
                  [3, Number.NaN],
                  [4, 0.2],
                ],
              },
              { name: 'eval', points: [[2, 0.6]] },
            ],
          },
          {
            title: 'wins',
            kind: 'bar',
            series: [{ name: 'a', points: [[0, 0.4]], errors: [[0.3, 0.5]] }],
          },
        ],
      },
    ]);
    expect(html).toContain('<title>run &lt;1&gt;</title>');
    const paths = [...html.matchAll(/<path d="([^"]*)"/g)].map((m) => m[1]!);
    expect(paths.map((d) => (d.match(/[ML]/g) ?? []).length)).toEqual([3, 1]);
    expect((html.match(/<rect x=/g) ?? []).length).toBe(1);
    expect(html.startsWith('<!doctype html>')).toBe(true);
  });
});
