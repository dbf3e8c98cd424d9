"""Take the README's TensorBoard screenshot of a live run: start `bnlab reproduce`, wait until
its logs hold some evaluations, serve them with `tensorboard`, and let headless Chromium (Debian's
package: `apt-get install chromium`) render the Time Series dashboard to a PNG while the run is
still training; then stop the run with Ctrl-C (it stays resumable with --resume).

    python scripts/tensorboard_screenshot.py                      # docs/tensorboard-live.png
    python scripts/tensorboard_screenshot.py --evaluations 20 --out shot.png
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import matplotlib.pyplot as plt
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]
# the cards the screenshot shows: the accuracy curves, the test loss and the last hidden layer's
# BN inputs; charts drawn as SVG (headless Chromium has no GPU for TensorBoard's WebGL lines)
QUERY = {"tagFilter": r"accuracy/|loss/test|layer3/bn_input", "forceSVG": "true"}
# the settings pane TensorBoard opens on the right at a first visit, cut off
SETTINGS_WIDTH = 240
# Chromium as a root user in a sandbox with no network (see the flags' reasons in
# /work/.library/env: background connections to Google's hosts are refused here)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _evaluations(logdir: Path) -> int:
    if not logdir.is_dir():
        return 0
    acc = EventAccumulator(str(logdir)).Reload()
    return len(acc.Tensors("accuracy/test")) if "accuracy/test" in acc.Tags()["tensors"] else 0


def _serve(logdir: Path) -> tuple[subprocess.Popen, str]:
    child = subprocess.Popen(
        ["tensorboard", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in child.stdout:
        found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if found:
            return child, found.group(1)
    raise SystemExit("tensorboard exited before it served; is it installed?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "tensorboard-live.png")
    parser.add_argument("--evaluations", type=int, default=12, help="evaluations logged first")
    parser.add_argument("--size", default="1400,900", help="window width,height in pixels")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        run = subprocess.Popen(
            ["bnlab", "reproduce", "--out", str(run_dir)], stderr=subprocess.PIPE
        )
        board = None
        try:
            logdir = run_dir / "tensorboard" / "bn-seed0"
            while _evaluations(logdir) < args.evaluations:
                if run.poll() is not None:
                    raise SystemExit(f"the run ended first: {run.stderr.read().decode()}")
                time.sleep(0.5)
            board, base = _serve(run_dir / "tensorboard")
            query = urllib.parse.urlencode(QUERY)
            subprocess.run(
                [
                    chromium,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={Path(tmp) / 'chromium'}",
                    f"--window-size={args.size}",
                    # time for the dashboard's scripts to fetch and draw every card
                    "--virtual-time-budget=20000",
                    f"--screenshot={args.out}",
                    f"{base}/?{query}#timeseries",
                ],
                check=True,
                capture_output=True,
            )
            still = run.poll() is None
            image = plt.imread(args.out)
            plt.imsave(args.out, image[:, : image.shape[1] - SETTINGS_WIDTH])
            print(f"{args.out}: taken while the run was {'training' if still else 'done'}")
        finally:
            if board is not None:
                board.kill()
            if run.poll() is None:
                run.send_signal(signal.SIGINT)
                run.wait(timeout=120)


if __name__ == "__main__":
    sys.exit(main())
