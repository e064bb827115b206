"""The real page in a real browser: `streamlit run web_app.py` driven by headless Chromium.

Needs the Debian packages chromium (and chromium-driver) and the Python package playwright; the
system Chromium is used because browser downloads are not possible here.
"""
import pytest

from tests.streamlit_server import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_server

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not found: apt-get install chromium chromium-driver",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright not installed: pip install playwright")

from aidetect.explain import HOW_TO_READ  # noqa: E402  (after the skips: it imports TensorFlow)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = ROOT / "tests" / "artifacts" / "web_app.png"
VERDICTS_S = 120                # model load + first inference on a busy 2-core machine


@pytest.fixture
def page_url(tiny_model_path, tmp_path):
    with streamlit_server(tiny_model_path, tmp_path / "streamlit.log") as server:
        yield server.url


@pytest.fixture
def server_log(tmp_path):
    return tmp_path / "streamlit.log"


def test_upload_two_images_a_declared_ai_image_and_a_corrupt_file(page_url, server_log, sample_dir):
    from tests import evidence_files

    files = [{"name": path.name, "mimeType": "image/jpeg", "buffer": path.read_bytes()}
             for path in (sample_dir / "REAL" / "real_000.jpg", sample_dir / "FAKE" / "fake_000.jpg")]
    files.append({"name": "declared.jpg", "mimeType": "image/jpeg",       # signed Content Credentials
                  "buffer": evidence_files.signed(evidence_files.make_signing_ca())})
    files.append({"name": "corrupt.jpg", "mimeType": "image/jpeg", "buffer": b"this is not a picture"})
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 2000})
            page.goto(page_url)
            page.get_by_text("Choose images...").wait_for(timeout=VERDICTS_S * 1000)
            images_input = page.get_by_test_id("stFileUploader").filter(has_text="Choose images...")
            images_input.locator("input[type=file]").set_input_files(files)

            expect = sync_api.expect
            expect(page.get_by_text("Probability AI-generated:")).to_have_count(3, timeout=VERDICTS_S * 1000)
            verdicts = (page.get_by_text("AI-generated", exact=True)
                        .or_(page.get_by_text("Real", exact=True))
                        .or_(page.get_by_text("Uncertain — review manually", exact=True)))
            expect(verdicts).to_have_count(3)
            expect(page.get_by_text("The file declares it is AI-generated (Content Credentials)")).to_have_count(1)
            expect(page.get_by_text("Decided by: file declares AI")).to_have_count(1)
            expect(page.get_by_text("can't be classified: not an image file")).to_have_count(1)
            expect(page.get_by_text("Traceback")).to_have_count(0)
            explanation = page.get_by_test_id("stExpander").first
            explanation.get_by_text("Explanation heatmap").click()
            expect(explanation.get_by_role("img")).to_be_visible()
            expect(explanation.get_by_text(HOW_TO_READ)).to_be_visible()

            # the screenshot should show the finished page: script done, every picture loaded
            expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=VERDICTS_S * 1000)
            page.wait_for_function("[...document.images].every(image => image.complete)")
            page.mouse.move(0, 0)
            page.wait_for_timeout(1000)     # let the expander finish opening
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            print(f"screenshot: {SCREENSHOT}")
            # a quiet first start: the URL block and the model's line, nothing from TensorFlow
            log = [line.strip() for line in server_log.read_text().splitlines() if line.strip()]
            assert log[:2] == ["You can now view your Streamlit app in your browser.",
                               f"URL: http://localhost:{page_url.rsplit(':', 1)[1]}"]
            assert [line for line in log[2:] if not line.startswith("Model loaded: ")] == [], log
        finally:
            browser.close()
