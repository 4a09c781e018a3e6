"""`mi report` pages in a real browser: Debian's Chromium, headless, driven by selenium through
/usr/bin/chromedriver (nothing is downloaded). Skipped, visibly, where the driver is not installed.

For the seed decoder (sparse, its shapes from torch), a sharded Llama-2 70B (sparse), an ONNX and a GGUF
fixture: no console message at all (a policy violation would be one), no request but the page itself, the
treemap's first tiles and their shares read from the DOM against sums over the inventory computed here, the
filter narrowing the table, a planted hostile name staying text. Screenshots at desktop and phone widths go
to a temporary folder (printed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modelscope_inspect as mi
from tests.conftest import FIXTURES, run_cli
from tests.report_models import HOSTILE_NAMES, write_70b, write_hostile, write_seed

CHROMEDRIVER = Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMEDRIVER.exists(), reason="no /usr/bin/chromedriver (apt-get install chromium-driver)"),
]
webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("safetensors")
DESKTOP = (1280, 900)
PHONE = (390, 844)


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):  # fmt: skip
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("report-models")
    seed, numel = write_seed(folder)
    assert numel == 197_714_267  # torch's own count of the seed decoder's parameters
    return {
        "seed": seed,
        "70b": write_70b(folder),
        "onnx": FIXTURES / "tiny_mlp.onnx",
        "gguf": FIXTURES / "tiny_llama.gguf",
        "hostile": write_hostile(folder),
    }


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report-screenshots")


def _report(model: Path, out: Path) -> Path:
    r = run_cli("report", str(model), "-o", str(out), "--force")
    assert r.code == 0, r.stderr
    return out


def _open(driver: Any, page: Path) -> float:
    """Open `page`, wait for the script's ready flag, return the ms from navigation start to it."""
    driver.get_log("browser")
    driver.get_log("performance")  # drop what earlier pages left
    driver.get(page.as_uri())
    for _ in range(100):
        ready = driver.execute_script("return window.__miReady")
        if ready is not None:
            return float(ready)
        time.sleep(0.05)
    raise AssertionError("the page never set its ready flag")


def _check_quiet(driver: Any, page: Path) -> None:
    """No console message (errors, policy violations) and no request but the page itself."""
    assert driver.get_log("browser") == []
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    assert [u for u in urls if not u.startswith("data:")] == [page.as_uri()]


def _tiles(driver: Any) -> list[tuple[str, float]]:
    return [
        (t.get_attribute("data-name"), float(t.get_attribute("data-share")))
        for t in driver.find_elements("css selector", "#treemap > .tile")
    ]


def _bytes_share(inv: Any, prefix: str) -> float:
    """Unique bytes of the model's tensors under `prefix`, over its total: summed here from the records."""
    part = sum(t.counted_nbytes for t in inv.tensors if t.section == "model" and t.name.startswith(prefix))
    return float(part / inv.total_bytes)


def _shot(driver: Any, shots: Path, name: str) -> None:
    for label, (w, h) in (("desktop", DESKTOP), ("phone", PHONE)):
        driver.set_window_size(w, h)
        driver.execute_script("document.getElementById('modules').scrollIntoView()")
        time.sleep(0.2)  # the treemap redraws on resize
        driver.save_screenshot(str(shots / f"{name}-{label}.png"))
        if label == "phone":  # nothing wider than the phone's screen but the scrolling tables
            width = driver.execute_script("return document.documentElement.scrollWidth")
            assert width <= w + 1, f"page is {width}px wide on a {w}px screen"
    driver.set_window_size(*DESKTOP)
    print(f"\nscreenshots of {name}: {shots}")


def test_seed_model(driver: Any, models: dict[str, Path], shots: Path, tmp_path: Path) -> None:
    page = _report(models["seed"], tmp_path / "seed.html")
    ms = _open(driver, page)
    _check_quiet(driver, page)
    tiles = _tiles(driver)
    inv = mi.load(str(models["seed"]))
    names = [n for n, _ in tiles]
    # The head (weight and bias), the embedding, the six decoder layers folded: largest first.
    assert names == ["fc_out", "embedding", "transformer_decoder.layers.0-5 ×6"]
    shares = dict(tiles)
    assert round(100 * shares["embedding"], 1) == 43.6  # 86,160,896 of 197,714,267 f32 parameters
    assert shares["embedding"] == pytest.approx(_bytes_share(inv, "embedding."), abs=1e-6)
    assert shares["fc_out"] == pytest.approx(_bytes_share(inv, "fc_out."), abs=1e-6)
    assert shares["transformer_decoder.layers.0-5 ×6"] == pytest.approx(
        _bytes_share(inv, "transformer_decoder.layers."), abs=1e-6
    )
    print(f"\nseed page ready in {ms:.0f} ms")
    _shot(driver, shots, "seed")


def test_70b_sharded(driver: Any, models: dict[str, Path], shots: Path, tmp_path: Path) -> None:
    start = time.perf_counter()
    page = _report(models["70b"], tmp_path / "70b.html")
    written = time.perf_counter() - start
    ms = _open(driver, page)
    _check_quiet(driver, page)
    inv = mi.load(str(models["70b"]))
    shares = dict(_tiles(driver))
    assert list(shares)[:3] == ["model.layers.0-79 ×80", "model.embed_tokens", "lm_head"]
    for name, prefix in (("model.layers.0-79 ×80", "model.layers."), ("model.embed_tokens", "model.embed_tokens."),
                         ("lm_head", "lm_head.")):  # fmt: skip
        assert shares[name] == pytest.approx(_bytes_share(inv, prefix), abs=1e-6)
    # Zooming: the folded layers' tile opens onto their mlp and self_attn, summed over the 80 blocks.
    driver.find_element("css selector", '#treemap > .tile[data-name="model.layers.0-79 ×80"]').click()
    inner = dict(_tiles(driver))
    # Per layer, in units of d = 8192 elements: mlp 3·28672, attention 2·8192 + 2·1024 (8 KV heads of 128), norms 2.
    mlp = 3 * 28672 / (3 * 28672 + 2 * 8192 + 2 * 1024 + 2)
    assert inner["mlp"] == pytest.approx(_bytes_share(inv, "model.layers.") * mlp, abs=1e-6)
    # ... and one by one: 80 tiles of one block each.
    driver.find_element("css selector", "#tm-crumbs button.blocks").click()
    blocks = _tiles(driver)
    assert len(blocks) == 80 and blocks[0][0].startswith("model.layers.")
    size = page.stat().st_size
    print(f"\n70B sharded: page {size:,} bytes, written in {written:.2f} s, ready in the browser in {ms:.0f} ms")
    _shot(driver, shots, "70b")


@pytest.mark.parametrize("kind", ["onnx", "gguf"])
def test_onnx_and_gguf(driver: Any, models: dict[str, Path], tmp_path: Path, kind: str) -> None:
    page = _report(models[kind], tmp_path / f"{kind}.html")
    _open(driver, page)
    _check_quiet(driver, page)
    inv = mi.load(str(models[kind]))
    tiles = _tiles(driver)
    assert sum(s for _, s in tiles) == pytest.approx(1.0, abs=1e-5)
    first = tiles[0][0].split(" ×")[0]
    assert tiles[0][1] == pytest.approx(_bytes_share(inv, first + "."), abs=1e-6)
    assert driver.find_elements("css selector", "#graph img"), "the graph is embedded (Graphviz is installed)"


def test_filter_and_hostile_names(driver: Any, models: dict[str, Path], tmp_path: Path) -> None:
    page = _report(models["hostile"], tmp_path / "hostile.html")
    _open(driver, page)
    _check_quiet(driver, page)
    assert driver.execute_script("return window.__pwned") is None
    count = driver.find_element("id", "tensor-count")
    assert count.get_attribute("data-shown") == "4"
    box = driver.find_element("id", "tensor-filter")
    box.send_keys("onerror")
    assert count.get_attribute("data-shown") == "1"
    rows = driver.find_elements("css selector", "#tensor-space .vrow")
    assert [r.find_element("css selector", "div").text for r in rows] == [HOSTILE_NAMES[0]]
    box.clear()
    box.send_keys("*.weight")
    assert count.get_attribute("data-shown") == "3"  # a glob on the full name
    tile_names = {n for n, _ in _tiles(driver)}
    assert "plain" in tile_names
    assert driver.execute_script("return window.__pwned") is None


def test_70b_filter_and_sort(driver: Any, models: dict[str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    page = _report(models["70b"], tmp_path / "70b.html")
    _open(driver, page)
    count = driver.find_element("id", "tensor-count")
    assert count.get_attribute("data-shown") == "723"
    driver.find_element("id", "tensor-filter").send_keys("layers.7.")
    assert count.get_attribute("data-shown") == "9"  # layers.7's 9 tensors (a substring: not layers.70)
    driver.find_element("id", "tensor-filter").send_keys(Keys.BACKSPACE)
    assert count.get_attribute("data-shown") == str(11 * 9)  # layers.7 and layers.70-79
    driver.find_element("css selector", '#tensor-head button[data-key="bytes"]').click()
    first = driver.find_element("css selector", "#tensor-space .vrow div").text
    assert first.endswith(("gate_proj.weight", "up_proj.weight", "down_proj.weight"))


def test_tied_storage_is_marked(driver: Any, tmp_path: Path) -> None:
    """GPT-2's `lm_head.weight` shares `transformer.wte.weight`'s storage (torch.save wrote it once)."""
    page = _report(FIXTURES / "tied_gpt2.bin", tmp_path / "tied.html")
    _open(driver, page)
    _check_quiet(driver, page)
    tiles = {t.get_attribute("data-name"): t for t in driver.find_elements("css selector", "#treemap > .tile")}
    assert "lm_head" not in tiles  # counted once: the head adds no bytes
    assert "tied" in tiles["transformer.wte"].get_attribute("class").split()
    assert [n for n, t in tiles.items() if "tied" in t.get_attribute("class").split()] == ["transformer.wte"]


def test_ten_thousand_tensors(driver: Any, tmp_path: Path) -> None:
    """A file of 12,000 tensors: the table scrolls to its last row, and filtering stays quick."""
    from benchmarks.layouts import write_sparse_safetensors

    layout = [(f"blocks.{i}.experts.{j}.weight", (64, 64)) for i in range(100) for j in range(120)]
    model = tmp_path / "many.safetensors"
    write_sparse_safetensors(model, layout, "F16")
    start = time.perf_counter()
    page = _report(model, tmp_path / "many.html")
    written = time.perf_counter() - start
    ms = _open(driver, page)
    _check_quiet(driver, page)
    count = driver.find_element("id", "tensor-count")
    assert count.get_attribute("data-shown") == "12000"
    assert len(driver.find_elements("css selector", "#tensor-space .vrow")) < 100  # only the rows in view exist
    driver.execute_script("var b = document.getElementById('tensor-body'); b.scrollTop = b.scrollHeight;")
    time.sleep(0.2)
    last = driver.find_elements("css selector", "#tensor-space .vrow")[-1].find_element("css selector", "div").text
    assert last == "blocks.99.experts.119.weight"
    t0 = driver.execute_script("return performance.now()")
    driver.find_element("id", "tensor-filter").send_keys("experts.7")
    assert count.get_attribute("data-shown") == str(100 * 11)  # experts.7 and experts.70-79 of each block
    filter_ms = driver.execute_script("return performance.now()") - t0
    size = page.stat().st_size
    print(
        f"\n12,000 tensors: page {size:,} bytes, written in {written:.2f} s, ready in {ms:.0f} ms, "
        f"filter typed and applied in {filter_ms:.0f} ms"
    )


def test_readable_without_javascript(models: dict[str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.chrome.service import Service

    page = _report(models["seed"], tmp_path / "seed.html")
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--blink-settings=scriptEnabled=false"):
        opts.add_argument(arg)
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    try:
        d.get(page.as_uri())
        body = d.find_element("tag name", "body").text
        assert "197,714,267 (197.7M)" in body
        assert "transformer_decoder.layers.0-5 ×6" in body  # the module table
        assert "zoomable treemap needs JavaScript" in body
        assert d.find_element("id", "tensor-static").is_displayed()
        assert not d.find_element("id", "treemap-ui").is_displayed()
    finally:
        d.quit()
