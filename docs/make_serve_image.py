"""Takes the README's picture of tagger-serve's page, docs/images/serve.png.

    python docs/make_serve_image.py MODEL AUDIO [AUDIO ...] [--out docs/images/serve.png]

Joins the AUDIO files end to end (as docs/make_images.py does), starts
`python -m tagger.serve MODEL` on 127.0.0.1 (a free port), opens the page
in the system's headless Chromium (chromium and chromedriver, e.g. `apt-get
install chromium chromium-driver`; selenium from requirements-dev.txt),
uploads the joined file, moves the playhead a third of the way in, points
at the taggram so its tooltip shows, and saves the window. The README's
picture: the demo's model and the three synthetic test clips that
docs/images/taggram.png shows:

    python docs/make_serve_image.py demo_output/runs/samplecnn-rese-multi/model.keras \\
        demo_output/dataset/mp3/d/the_songs-winter-09-wild_rooms-88-117.mp3 \\
        demo_output/dataset/mp3/e/river_lantern-north-10-rooms-117-146.mp3 \\
        demo_output/dataset/mp3/f/wendy_sato-paper-13-fire_ocean-0-29.mp3
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from make_images import JOINED_NAME, join_audio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT = 300  # seconds for the server to start and for the page to show the tags


# the taggram's point (x, y in CSS pixels) for the time arguments[0] and the
# tag that scores highest there (the page's own layout, `state` in page.js)
POINT = """
const r = state.result, layout = state.layout, t = arguments[0];
const w = r.taggram.starts.findIndex((s) => t >= s && t < s + r.window_seconds);
const row = r.taggram.scores[Math.max(w, 0)];
const tag = row.indexOf(Math.max(...row));
return [layout.xOf(t), layout.top + (tag + 0.5) * layout.rowHeight];
"""


def start_server(model):
    """(process, url) of `python -m tagger.serve MODEL --port 0`."""
    process = subprocess.Popen([sys.executable, "-m", "tagger.serve", model, "--port", "0",
                                "--no-progress"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    found = []

    def read():
        for line in process.stderr:
            match = re.search(r"serving on (http://\S+/)", line)
            if match:
                found.append(match.group(1))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + WAIT
    while not found and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not found:
        process.kill()
        raise SystemExit("make_serve_image.py: the server did not start")
    return process, found[0]


def browser(width, height):
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}", "--force-device-scale-factor=1",
                 "--hide-scrollbars"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options,
                            service=webdriver.ChromeService(shutil.which("chromedriver")))


def wait_for(driver, script, what):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if driver.execute_script(script):
            return
        time.sleep(0.2)
    raise SystemExit(f"make_serve_image.py: timed out waiting for {what}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", metavar="MODEL", help="a model file or a pretrained name")
    parser.add_argument("audio", metavar="AUDIO", nargs="+", help="audio files, joined in order")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images", "serve.png"),
                        help="the PNG to write (default: docs/images/serve.png)")
    parser.add_argument("--size", default="1400x1000", help="window, WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    width, height = map(int, args.size.split("x"))
    from selenium.webdriver.common.action_chains import ActionChains

    with tempfile.TemporaryDirectory() as work:
        audio = os.path.join(work, JOINED_NAME)
        seconds = join_audio(args.audio, audio)
        process, url = start_server(args.model)
        driver = browser(width, height)
        try:
            driver.get(url)
            wait_for(driver, "return document.querySelectorAll('#model option').length > 0",
                     "the model list")
            driver.find_element("id", "file").send_keys(audio)
            wait_for(driver, "return document.body.dataset.state === 'done'", "the tags")
            driver.execute_script("document.getElementById('player').currentTime = "
                                  f"{seconds / 3:.2f};")
            time.sleep(1.0)
            canvas = driver.find_element("id", "taggram")
            x, y = driver.execute_script(POINT, seconds / 2)  # the tooltip, half-way through
            size = canvas.size
            ActionChains(driver).move_to_element_with_offset(
                canvas, int(x - size["width"] / 2), int(y - size["height"] / 2)).perform()
            time.sleep(0.5)
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
            process.send_signal(signal.SIGINT)
            process.wait(60)
    print(f"wrote {args.out} ({len(args.audio)} files, {seconds:.1f} s)")


if __name__ == "__main__":
    main()
