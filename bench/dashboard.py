"""The dashboard's request log with a full journal: 10,000 entries recorded by real requests (ten
tenants, a thousand each), then the log page loaded in headless Chromium, timed by the Navigation
Timing API. Optionally, screenshots of every page (the README's, in docs/dashboard/).

    apt-get install chromium chromium-driver && python3 -m pip install -e '.[test]'
    python3 bench/dashboard.py [--loads 10] [--screenshots docs/dashboard]

Prints, for each load after a first (cold) one: the navigation's responseEnd (the page's HTML in),
DOMContentLoaded, the load event, and `log-rendered` (the first page of entries fetched from the
admin API and in the table), each in ms from the navigation's start; then their medians.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's mockserver

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from mockserver.testing import running  # noqa: E402

TIMING = """
const nav = performance.getEntriesByType('navigation')[0];
const mark = performance.getEntriesByName('log-rendered').pop();
return [nav.responseEnd, nav.domContentLoadedEventEnd, nav.loadEventEnd, mark ? mark.startTime : null,
        performance.getEntriesByType('resource').filter(e => e.name.includes('/__admin/requests')).map(e => e.name)];
"""
PAGES = ["", "/requests", "/state", "/webhooks", "/faults", "/clock", "/chart"]


def browser(user_data: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,900", f"--user-data-dir={user_data}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))


def fill(server, tenants: int, each: int) -> float:
    """`tenants` tenants, `each` real requests apiece (reads and writes of every vendor); seconds taken."""
    started = time.perf_counter()
    for number in range(tenants):
        tenant = server.new_tenant(tenant=f"team-{number}", rate_limits=False)
        clients = {vendor: tenant.client(vendor) for vendor in ("karmabot", "dailybot", "kudosnow", "corteza")}
        users = tenant.state("karmabot")["users"]
        try:
            for index in range(each):
                kind = index % 10
                if kind < 4:
                    clients["karmabot"].get("/users", params={"limit": 5})
                elif kind == 4:
                    clients["karmabot"].post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"],
                                                              "description": f"thanks #{index}"})
                elif kind < 7:
                    clients["dailybot"].get("/kudos/", params={"limit": 5})
                elif kind == 7:
                    clients["kudosnow"].get("/redemptions", params={"perPage": 5})
                elif kind == 8:
                    clients["corteza"].get("/channels/")
                else:
                    clients["karmabot"].get("/no-such-path")
        finally:
            for client in clients.values():
                client.close()
    return time.perf_counter() - started


def demo(server) -> None:
    """A little of everything, for the screenshots: a fault armed, a clock moved, a hostile message."""
    tenant = server.new_tenant(tenant="demo")
    with tenant.client("corteza") as cz:
        general = next(c for c in cz.get("/channels/").json()["response"] if c["name"] == "general")["channelID"]
        cz.post(f"/channels/{general}/messages/", json={"message": "<script>alert('shown as text')</script>"})
    server.admin.post("/__admin/faults", json={"vendor": "karmabot", "kind": "status", "status": 503, "count": 3,
                                               "tenant": "demo"})
    tenant.advance(3 * 86400)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--each", type=int, default=1000)
    parser.add_argument("--screenshots", type=Path, help="a folder: a PNG of every page goes there")
    args = parser.parse_args()
    with running(seed=0, clock="frozen", journal_limit=args.each) as server, \
            tempfile.TemporaryDirectory() as user_data:
        took = fill(server, args.tenants, args.each)
        total = server.admin.get("/__admin/requests", params={"limit": 1}).json()["total"]
        print(f"journal: {total} entries, recorded by real requests in {took:.1f} s")
        driver = browser(user_data)
        try:
            rows = []
            for load in range(args.loads + 1):
                driver.get(server.url + "/__admin/ui/requests")
                WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready"))
                *numbers, fetched = driver.execute_script(TIMING)
                assert all("limit=100" in url for url in fetched), fetched
                if load:  # the first load is cold (the browser's own start-up)
                    rows.append(numbers)
                    print("load {:2d}: responseEnd {:6.1f}  DOMContentLoaded {:6.1f}  load {:6.1f}  "
                          "log-rendered {:6.1f} ms".format(load, *numbers))
            medians = [statistics.median(column) for column in zip(*rows, strict=True)]
            print("median : responseEnd {:6.1f}  DOMContentLoaded {:6.1f}  load {:6.1f}  log-rendered {:6.1f} ms"
                  .format(*medians))
            print(f"rows shown: {len(driver.find_elements('css selector', '#log tbody tr'))} of {total}")
            errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            print(f"console errors: {len(errors)}")
            if args.screenshots:
                shoot(driver, server, args.screenshots)
        finally:
            driver.quit()


def shoot(driver, server, folder: Path) -> None:
    demo(server)
    folder.mkdir(parents=True, exist_ok=True)
    for path in PAGES:
        query = {"/state": "?tenant=demo&vendor=corteza", "/webhooks": "?tenant=demo", "/clock": "?tenant=demo",
                 "/requests": "?tenant=team-0"}.get(path, "")
        driver.get(server.url + "/__admin/ui" + path + query)
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready"))
        if path == "/requests":
            driver.find_elements("css selector", "#log tbody tr")[1].click()
        if path == "/chart":  # a few samples with traffic between them
            with httpx.Client(base_url=server.base_url("karmabot"),
                              headers=server.admin.get("/__admin/tenants/demo").json()["credentials"]["karmabot"][
                                  "headers"]) as karma:
                for _ in range(6):
                    for _ in range(20):
                        karma.get("/users")
                    karma.get("/nope")
                    time.sleep(2.1)
            driver.execute_script("document.querySelector('section[data-vendor=karmabot]').scrollIntoView()")
        name = (path.strip("/") or "tenants") + ".png"
        driver.save_screenshot(str(folder / name))
        print("screenshot:", folder / name)


if __name__ == "__main__":
    main()
