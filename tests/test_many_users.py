"""Eight people use one `streamlit run web_app.py` server at the same time.

One headless Chromium, eight browser contexts (separate cookies, separate Streamlit sessions). All
eight open the page at once, so the model is first needed by eight sessions together; once every
page shows the uploader, all eight upload two different images at the same moment. Each page must
show exactly the verdicts and probabilities that Predictor.classify gives for its own files, and
the server must have loaded the model once. The server's memory (RSS) is printed and bounded.

    pytest tests/test_many_users.py -s

The model is a tiny one built here whose answer depends strongly on the image (its brightness),
so the sixteen images get sixteen clearly different probabilities and a result shown in the wrong
session would be caught. To try a real model instead (prints its RSS; allow more time):

    AIDETECT_MANY_USERS_MODEL=models/resnet101/model.keras AIDETECT_MANY_USERS_S=900 \
        pytest tests/test_many_users.py -s

Needs the Debian package chromium and the Python package playwright, like tests/test_browser.py.
"""
import asyncio
import os
import re
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

from tests.streamlit_server import CHROMIUM, CHROMIUM_ARGS, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not found: apt-get install chromium chromium-driver",
                allow_module_level=True)
async_api = pytest.importorskip("playwright.async_api",
                                reason="playwright not installed: pip install playwright")

USERS = 8
IMAGES_EACH = 2
TOTAL_S = float(os.environ.get("AIDETECT_MANY_USERS_S", 180))   # server start to last check
REAL_MODEL = os.environ.get("AIDETECT_MANY_USERS_MODEL")
MIN_GAP = 0.01          # tiny model: any two images' probabilities differ by more than this
EDGE_MARGIN = 0.01      # ... and none is this close to a verdict boundary
# Memory the server may gain from the moment the model is loaded (all pages open) to the end:
# eight sessions' uploads, results, traced TensorFlow functions and their buffers. A copy of the
# model per session would exceed it (ResNet101: ~170 MiB of float32 weights a copy; measured with
# it: +430 MiB). Loading the model itself (+630 MiB for ResNet101) comes before and is not counted.
RSS_ALLOWANCE = 600 * 2**20
MiB = 2**20
CARD = re.compile(r"(?P<verdict>AI-generated|Real|Uncertain — review manually)\s+"
                  r"Probability AI-generated: (?P<prob>[<> ]*[\d.]+%)")
# Each result's card (caption = file name; verdict and probability beside it) and the
# summary table's rows (its grid keeps an accessible <table> of the cells in the page).
READ_PAGE = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const cards = [...main.querySelectorAll('[data-testid="stHorizontalBlock"]')].map(block => [
    block.querySelector('[data-testid="stImageCaption"]')?.textContent.trim() ?? '',
    block.querySelectorAll('[data-testid="stColumn"]')[1]?.innerText ?? '']);
  const table = [...main.querySelectorAll('[data-testid="stDataFrame"] tr')]
    .map(row => [...row.querySelectorAll('td')].map(cell => cell.textContent.trim()))
    .filter(cells => cells.length);
  return {cards, table};
}"""
VERDICT_TEXT = {"AI-generated": "AI-generated", "Real": "Real",
                "Uncertain": "Uncertain — review manually"}   # = web_app.VERDICT_TEXT


def image_sensitive_model(settings, paths: List[Path], path: Path) -> Path:
    """A tiny classifier whose P(AI-generated) is a steep function of an image's brightness:
    every convolution passes the grey level through, and the head is calibrated on `paths` so their
    probabilities spread over roughly 0.05..0.95."""
    import keras

    from aidetect import images
    from aidetect.model import build_model, save_slim
    from aidetect.predict import Predictor

    model = build_model(settings)
    grey = np.zeros((3, 3, 3, 8), np.float32)
    grey[1, 1, :, 0] = 1 / 3                                        # mean of R, G, B in [-1, 1]
    model.get_layer("tiny_conv1").set_weights([grey, np.eye(1, 8, dtype=np.float32)[0]])  # +1: > 0
    same = np.zeros((3, 3, 8, 16), np.float32)
    same[1, 1, 0, 0] = 1
    model.get_layer("tiny_conv2").set_weights([same, np.zeros(16, np.float32)])
    model.get_layer("dense").set_weights([np.eye(16, 8, dtype=np.float32), np.zeros(8, np.float32)])
    brightness = keras.Model(model.inputs, model.get_layer("pool").output)
    predictor = Predictor(model)
    batch = np.stack([predictor.preprocess(images.try_load_rgb(p)[0]) for p in paths])
    level = brightness.predict(batch, verbose=0)[:, 0]
    steepness = 3.0 / max(float(level.std()), 1e-3)
    head = np.zeros((8, 2), np.float32)
    head[0, 1] = steepness                              # logit(AI) - logit(real) = s * (level - median)
    model.get_layer("prediction").set_weights([head, np.array([0, -steepness * np.median(level)], np.float32)])
    return save_slim(model, settings, path)


def pick_images(predictor, paths: List[Path], count: int, distinct: bool) -> List[Path]:
    """`count` images whose probabilities are pairwise MIN_GAP apart and EDGE_MARGIN from the
    verdict boundaries; with `distinct` False (a real model saturates at 0 and 1) fill up with others."""
    from aidetect.labels import DEFAULT_THRESHOLD
    from aidetect.labels import DEFAULT_UNCERTAIN_BAND as band
    edges = [DEFAULT_THRESHOLD - band, DEFAULT_THRESHOLD, DEFAULT_THRESHOLD + band]
    probs = {p: predictor.classify_one(p, p.name).prob_ai for p in paths}
    chosen: List[Path] = []
    for path in sorted(paths, key=probs.get):
        prob = probs[path]
        if ((not chosen or prob - probs[chosen[-1]] > MIN_GAP)
                and all(abs(prob - edge) > EDGE_MARGIN for edge in edges)):
            chosen.append(path)
    if len(chosen) < count:
        assert not distinct, (f"only {len(chosen)} sample images have clearly different "
                              f"probabilities: {sorted(probs.values())}")
        chosen = sorted(chosen + [p for p in paths if p not in chosen][:count - len(chosen)], key=probs.get)
    else:                                    # spread over the whole range of probabilities
        chosen = [chosen[round(i * (len(chosen) - 1) / (count - 1))] for i in range(count)]
    # user i gets a low and a high one, so most sessions see two different verdicts
    return [chosen[i // 2 + (count // 2) * (i % 2)] for i in range(count)]


@pytest.fixture(scope="module")
def deadline() -> float:
    return time.monotonic() + TOTAL_S


@pytest.fixture(scope="module")
def model_and_images(deadline, tmp_path_factory, tiny_settings, sample_dir):
    """-> (model path, each user's images, the model loaded here for the expected answers)."""
    from aidetect.predict import Predictor
    paths = sorted(sample_dir.glob("*/*.jpg"))
    if REAL_MODEL:
        model_path = Path(REAL_MODEL).resolve()
        if not model_path.exists():
            pytest.skip(f"AIDETECT_MANY_USERS_MODEL={REAL_MODEL} does not exist")
    else:
        model_path = image_sensitive_model(tiny_settings, paths,
                                           tmp_path_factory.mktemp("many-users") / "model.keras")
    predictor = Predictor.load(model_path)
    chosen = pick_images(predictor, paths, USERS * IMAGES_EACH, distinct=not REAL_MODEL)
    return model_path, [chosen[i:i + IMAGES_EACH] for i in range(0, len(chosen), IMAGES_EACH)], predictor


@pytest.fixture
def server(model_and_images, tmp_path, deadline):
    """Stopped in teardown whatever happens in the test."""
    log = tmp_path / "streamlit.log"
    with streamlit_server(model_and_images[0], log,
                          start_timeout_s=max(1.0, deadline - time.monotonic())) as running:
        yield running
    print(f"server log: {log}")


def expected_results(predictor, paths: List[Path]) -> Tuple[Dict[str, tuple], Dict[str, tuple]]:
    """What the page should show: {name: (verdict, probability as printed)} on the result cards
    and {name: (verdict, probability)} in the summary table."""
    from aidetect.labels import DEFAULT_THRESHOLD, format_probability
    from aidetect.labels import DEFAULT_UNCERTAIN_BAND as band
    cards, table = {}, {}
    for path in paths:                     # one at a time, as the page classifies its uploads
        result = predictor.classify_one(path, path.name, threshold=DEFAULT_THRESHOLD, uncertain_band=band)
        shown = VERDICT_TEXT[result.label]
        cards[path.name] = (shown, format_probability(result.prob_ai))
        table[path.name] = (shown, format_probability(result.prob_ai))
    return cards, table


def read_page(found: dict) -> Tuple[Dict[str, tuple], Dict[str, tuple], list]:
    cards = {}
    for name, words in found["cards"]:
        match = CARD.search(words)
        cards[name] = (match["verdict"], match["prob"]) if match else words
    table = {}
    for cells in found["table"]:
        name, shown, prob = cells[:3] if len(cells) == len(TABLE_COLUMNS) else (repr(cells), "", "")
        table[name] = (shown, prob)
    return cards, table, found


TABLE_COLUMNS = ("file", "verdict", "probability AI-generated", "decided by", "file evidence")   # the page's summary


async def one_user(browser, url: str, files: List[Path], ready: asyncio.Barrier, timeout_s: float):
    """Open the page, wait for the other users, upload together.
    -> (what the page shows, seconds to the verdicts, seconds until captions and table are drawn)"""
    expect = async_api.expect
    wait_ms = timeout_s * 1000              # for expect(), which ignores the page's default timeout
    context = await browser.new_context(viewport={"width": 1200, "height": 2400})
    try:
        page = await context.new_page()
        page.set_default_timeout(wait_ms)
        await page.goto(url)
        await page.get_by_text("Choose images...").wait_for()
        await ready.wait()                  # every session is open and the model is loaded
        start = time.monotonic()
        images_input = page.get_by_test_id("stFileUploader").filter(has_text="Choose images...")   # not the trust list's
        await images_input.locator("input[type=file]").set_input_files(
            [{"name": p.name, "mimeType": "image/jpeg", "buffer": p.read_bytes()} for p in files])
        await expect(page.get_by_text("Probability AI-generated:")).to_have_count(len(files), timeout=wait_ms)
        await expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=wait_ms)
        verdicts_s = time.monotonic() - start
        await expect(page.get_by_test_id("stException")).to_have_count(0)
        await expect(page.get_by_text("can't be classified")).to_have_count(0)
        # captions and the summary grid appear a moment after the run (image loads, lazy grid)
        await expect(page.get_by_test_id("stImageCaption")).to_have_count(len(files), timeout=wait_ms)
        await expect(page.locator('[data-testid="stDataFrame"] td')).to_have_count(len(TABLE_COLUMNS) * len(files),
                                                                                 timeout=wait_ms)
        return read_page(await page.evaluate(READ_PAGE)), verdicts_s, time.monotonic() - start
    finally:
        await context.close()


async def all_users(url: str, sessions: List[List[Path]], timeout_s: float, on_ready) -> list:
    ready = asyncio.Barrier(len(sessions) + 1)
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            users = [asyncio.create_task(one_user(browser, url, files, ready, timeout_s))
                     for files in sessions]
            everyone = asyncio.create_task(ready.wait())
            await asyncio.wait([everyone, *users], return_when=asyncio.FIRST_COMPLETED)
            if everyone.done():
                on_ready()                   # all pages open: measure before the uploads start
            else:                            # a user failed before the uploads: report why
                await ready.abort()
            return await asyncio.gather(*users)
        finally:
            await browser.close()


def test_eight_users_upload_at_once(server, model_and_images, deadline):
    model_path, sessions, predictor = model_and_images
    names = [p.name for files in sessions for p in files]
    assert len(set(names)) == len(names) == USERS * IMAGES_EACH, "each session needs its own images"
    expected = {i: expected_results(predictor, files) for i, files in enumerate(sessions)}
    if not REAL_MODEL:
        probs = sorted(predictor.classify_one(p, p.name).prob_ai for files in sessions for p in files)
        assert min(np.diff(probs)) > MIN_GAP / 2, f"probabilities too close to tell sessions apart: {probs}"
        assert len({shown for _, table in expected.values() for shown, _ in table.values()}) == 3, \
            "the sixteen images should get all three verdicts"

    rss_start = server.rss_bytes()
    memory = {}

    def pages_open():
        memory["open"] = server.rss_bytes()
        memory["loads_when_open"] = server.model_loads()

    started = time.monotonic()
    remaining = deadline - started
    try:
        shown = asyncio.run(asyncio.wait_for(all_users(server.url, sessions, remaining, pages_open),
                                             timeout=remaining))
    except TimeoutError:
        pytest.fail(f"{USERS} users did not all get their verdicts within {TOTAL_S:.0f} s "
                    f"(log:\n{server.log_text()[-3000:]})")
    rss_end, rss_peak, loads = server.rss_bytes(), server.peak_rss_bytes(), server.model_loads()

    weights = sum(int(np.prod(w.shape)) * 4 for w in predictor.model.weights)    # float32 in memory
    verdicts_s = [seconds for _, seconds, _ in shown]
    drawn_s = [seconds for _, _, seconds in shown]
    print(f"\nmodel {model_path} ({weights / MiB:.1f} MiB of float32 weights)"
          f"\nserver RSS: {rss_start / MiB:.0f} MiB at start (TensorFlow imported), "
          f"{memory['open'] / MiB:.0f} MiB with {USERS} pages open (model loaded), "
          f"{rss_end / MiB:.0f} MiB after all uploads, peak {rss_peak / MiB:.0f} MiB; model loads: {loads}"
          f"\nupload to verdicts: {min(verdicts_s):.1f}..{max(verdicts_s):.1f} s per user "
          f"(captions and summary table drawn: ..{max(drawn_s):.1f} s), "
          f"{time.monotonic() - started:.1f} s for all {USERS} users")

    for i, ((cards, table, found), _, _) in enumerate(shown):
        want_cards, want_table = expected[i]
        assert cards == want_cards, f"user {i}: cards {cards}, expected {want_cards}; page: {found}"
        assert table.keys() == want_table.keys() and all(
            table[name][0] == want_table[name][0]
            and table[name][1] == want_table[name][1] for name in table), \
            f"user {i}: summary {table}, expected {want_table}; page: {found}"
    assert memory["loads_when_open"] == 1 and loads == 1, f"the server loaded the model {loads} times"
    assert rss_end - memory["open"] < RSS_ALLOWANCE, (
        f"server grew by {(rss_end - memory['open']) / MiB:.0f} MiB after loading the model, "
        f"more than {RSS_ALLOWANCE / MiB:.0f} MiB")
