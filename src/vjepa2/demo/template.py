"""The report page's frame and style: one self-contained HTML file (no script, no font, no CDN),
the figures beside it in figures/."""

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
.sub { color: #666; }
figure { display: inline-block; vertical-align: top; margin: 0.6em 1.2em 0.6em 0; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #eee; image-rendering: pixelated; }
figcaption { font-size: 0.9em; color: #444; max-width: 540px; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f4f4f4; padding: 0 0.2em; font-size: 0.85em; word-break: break-all; }
td:first-child code { white-space: nowrap; word-break: normal; }
.done { color: #17803d; } .failed { color: #b3261e; } .skipped { color: #a06a00; }
.note { background: #fff6e0; border-left: 4px solid #e0a800; padding: 0.4em 0.8em; }
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>vjepa2 demo report</title>
<style>{style}</style>
</head>
<body>
{body}
</body>
</html>
"""
