"""The dashboard in a real browser: headless Chromium against a real ``smsrecon dashboard``
over the seeded October, on SQLite and on PostgreSQL.

Every figure checked is compared with the same figure queried from the public views here.
With SMSRECON_SCREENSHOTS=DIR set, each page is saved as DIR/<page>.png (``make
screenshots`` does this for docs/dashboard/).
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.dashboard.conftest import HOSTILE_CARRIER, HOSTILE_PARTNER, OCTOBER, Served

PAGES = {
    "overview": "",
    "margin": "margin",
    "disputes": "disputes",
    "invoices": "invoices",
    "downloads": "downloads",
}
MONTH = {"first": "2026-10-01", "after": "2026-11-01"}


def load(browser: Any, url: str) -> None:
    browser.get(url)
    WebDriverWait(browser, 120).until(
        lambda d: d.execute_script("return document.body && document.body.dataset.ready === '1'")
    )


def screenshot(browser: Any, served: Served, name: str) -> None:
    target = os.environ.get("SMSRECON_SCREENSHOTS")
    if not target or "sqlite" not in served.database_url:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(max(900, height + 40), 2400))
    browser.save_screenshot(str(Path(target) / f"{name}.png"))
    browser.set_window_size(1400, 1000)


def value(browser: Any, css: str) -> Decimal | None:
    text = browser.find_element(By.CSS_SELECTOR, css).get_attribute("data-value")
    return Decimal(text) if text else None


def nano(units: Any) -> Decimal | None:
    return None if units is None else Decimal(int(units)).scaleb(-9)


def month_margin(served: Served, where: str = "", **params: Any) -> Any:
    return served.rows(
        "SELECT sum(messages) AS messages, sum(revenue_nano) AS revenue, sum(cost_nano) AS cost,"
        " sum(margin_nano) AS margin, sum(fx_missing) AS fx_missing FROM v_margin_daily "
        f"WHERE day >= :first AND day < :after {where}",
        **MONTH,
        **params,
    )[0]


def same_origin_assets(browser: Any, served: Served) -> list[str]:
    urls = browser.execute_script(
        "return Array.from(document.querySelectorAll('script[src], link[href], img[src],"
        " iframe[src], source[src], video[src], audio[src]'))"
        ".map(e => e.src || e.href)"
    )
    ours = urlsplit(served.url).netloc
    return [u for u in urls if urlsplit(u).netloc != ours or urlsplit(u).scheme != "http"]


def test_every_page_loads_with_only_its_own_assets(browser: Any, served: Served) -> None:
    for name, path in PAGES.items():
        load(browser, served.page(path, OCTOBER))
        assert browser.find_element(By.TAG_NAME, "h1").text, name
        assert same_origin_assets(browser, served) == [], name
        assert "Traceback" not in browser.page_source
        screenshot(browser, served, name)
    load(browser, served.page("message/a1"))
    assert same_origin_assets(browser, served) == []
    screenshot(browser, served, "message")


def test_the_overview_charts_are_drawn_with_their_points(browser: Any, served: Served) -> None:
    load(browser, served.page("", OCTOBER))
    charts = browser.execute_script(
        "return window.smsreconCharts.map(c => ({id: c.id, points: c.points,"
        " canvas: document.querySelectorAll('#' + c.id + ' canvas').length,"
        " drawn: c.plot.data.slice(1).flat().filter(v => v !== null).length}))"
    )
    by_id = {c["id"]: c for c in charts}
    assert set(by_id) == {"money-chart", "delivery-chart"}
    for chart in charts:
        assert chart["canvas"] >= 1 and chart["points"] > 0 and chart["drawn"] == chart["points"]
    # One point per day with revenue, cost or margin; the October has three such days'
    # figures on 10-01 (revenue, cost, margin) and the cost of 10-31 has no rate (none).
    day_rows = served.rows(
        "SELECT count(revenue_nano) + count(cost_nano) + count(margin_nano) AS n FROM "
        "(SELECT day, sum(revenue_nano) AS revenue_nano, sum(cost_nano) AS cost_nano, "
        "sum(margin_nano) AS margin_nano FROM v_margin_daily "
        "WHERE day >= :first AND day < :after GROUP BY day) d",
        **MONTH,
    )
    assert by_id["money-chart"]["points"] == day_rows[0].n
    rates = served.rows(
        "SELECT count(delivery_rate) AS n FROM v_delivery_daily "
        "WHERE day >= :first AND day < :after",
        **MONTH,
    )
    assert by_id["delivery-chart"]["points"] == rates[0].n


def test_the_overview_figures_are_the_views(browser: Any, served: Served) -> None:
    load(browser, served.page("", OCTOBER))
    want = month_margin(served)
    assert value(browser, "#total-revenue") == nano(want.revenue)
    assert value(browser, "#total-cost") == nano(want.cost)
    assert value(browser, "#total-margin") == nano(want.margin)
    assert value(browser, "#total-fx-missing") == want.fx_missing == 1  # 10-31: no rate
    billed = served.rows(
        "SELECT currency_iso, sum(payment_sum_minor) AS minor, max(currency_exponent) AS e "
        "FROM v_billing_daily WHERE day >= :first AND day < :after GROUP BY currency_iso",
        **MONTH,
    )
    for row in billed:
        cell = f"#billing tr[data-currency='{row.currency_iso}'] td[data-value]"
        assert value(browser, cell) == Decimal(int(row.minor)).scaleb(-row.e)
    delivery = served.rows(
        "SELECT carrier, sum(delivered) AS delivered, sum(messages) - sum(in_progress) AS final "
        "FROM v_delivery_daily WHERE day >= :first AND day < :after GROUP BY carrier",
        **MONTH,
    )
    shown = browser.find_elements(By.CSS_SELECTOR, "#delivery tbody tr")
    assert len(shown) == len(delivery)
    for row in delivery:
        cell = next(r for r in shown if r.get_attribute("data-carrier") == row.carrier)
        rate = cell.find_element(By.CSS_SELECTOR, "td[data-value]").get_attribute("data-value")
        expected = (Decimal(row.delivered) / Decimal(row.final)).quantize(Decimal("0.0001"))
        assert Decimal(rate) == expected
    assert browser.find_element(By.ID, "lag").get_attribute("data-value") == "0"
    assert browser.find_element(By.ID, "backlog").get_attribute("data-value").isdigit()


def test_the_margin_tables_are_the_views_and_negatives_stand_out(
    browser: Any, served: Served
) -> None:
    load(browser, served.page("margin", OCTOBER + "&sort=margin&dir=asc"))
    routes = served.rows(
        "SELECT carrier, country, sum(messages) AS messages, sum(revenue_nano) AS revenue, "
        "sum(cost_nano) AS cost, sum(margin_nano) AS margin FROM v_margin_daily "
        "WHERE day >= :first AND day < :after GROUP BY carrier, country",
        **MONTH,
    )
    shown = browser.find_elements(By.CSS_SELECTOR, "#by-route tbody tr")
    assert len(shown) == len(routes)
    for tr, _ in zip(shown, routes, strict=True):
        cells = tr.find_elements(By.TAG_NAME, "td")
        margin_cell = cells[5]
        figure = margin_cell.get_attribute("data-value")
        if figure and Decimal(figure) < 0:
            assert "neg" in margin_cell.get_attribute("class")
            assert margin_cell.value_of_css_property("color") != "rgba(29, 35, 48, 1)"
    seen = {
        (tr.find_elements(By.TAG_NAME, "td")[0].text, tr.find_elements(By.TAG_NAME, "td")[1].text):
        tuple(td.get_attribute("data-value") or None
              for td in tr.find_elements(By.CSS_SELECTOR, "td[data-value]"))
        for tr in shown
    }  # fmt: skip
    for r in routes:
        key = (r.carrier or "(none)", r.country or "(none)")
        assert tuple(None if x is None else Decimal(x) for x in seen[key]) == (
            nano(r.revenue),
            nano(r.cost),
            nano(r.margin),
        ), key
    # Sorted by margin, ascending: the column read top to bottom never decreases (rows
    # without a margin last).
    margins = [Decimal(m) for m in (v[2] for v in seen.values()) if m]
    assert margins == sorted(margins)
    load(browser, served.page("margin", OCTOBER + "&sort=margin&dir=desc"))
    desc = [
        Decimal(td.get_attribute("data-value"))
        for td in browser.find_elements(By.CSS_SELECTOR, "#by-route td.margin")
        if td.get_attribute("data-value")
    ]
    assert desc == sorted(desc, reverse=True)


def test_a_negative_margin_is_red(browser: Any, served: Served) -> None:
    # The hostile carrier's route: a DLR cost of 5.00 RUB against a price of 2.27.
    load(browser, served.page("margin", OCTOBER))
    negatives = browser.find_elements(By.CSS_SELECTOR, "td.margin.neg")
    figures = [
        Decimal(td.get_attribute("data-value"))
        for td in browser.find_elements(By.CSS_SELECTOR, "td.margin")
        if td.get_attribute("data-value")
    ]
    assert len(negatives) == len([f for f in figures if f < 0]) >= 1
    for td in negatives:
        assert td.value_of_css_property("color") == "rgba(179, 38, 30, 1)"
        assert td.text.startswith("−")


def test_the_filters_change_the_figures(browser: Any, served: Served) -> None:
    load(browser, served.page("", OCTOBER))
    month_cost = value(browser, "#total-cost")
    # The partner menu, as a person would use it: pick, apply; the URL says so.
    Select(browser.find_element(By.ID, "partner")).select_by_value("globex")
    browser.find_element(By.ID, "apply").click()
    WebDriverWait(browser, 60).until(lambda d: "partner=globex" in d.current_url)
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.ready === '1'")
    )
    globex = month_margin(served, "AND partner = :partner", partner="globex")
    assert value(browser, "#total-cost") == nano(globex.cost) != month_cost
    # The carrier, by URL (bookmarkable): only beeline's delivery row is left.
    load(browser, served.page("", OCTOBER + "&carrier=beeline"))
    carriers = [r.get_attribute("data-carrier") for r in
                browser.find_elements(By.CSS_SELECTOR, "#delivery tbody tr")]  # fmt: skip
    assert carriers == ["beeline"]
    beeline = month_margin(served, "AND carrier = :carrier", carrier="beeline")
    assert value(browser, "#total-cost") == nano(beeline.cost)
    # A day: 2026-10-31 holds only a4 (free, no rate: fx_missing 1, no cost converted).
    load(browser, served.page("", "period=day&date=2026-10-31"))
    assert browser.find_element(By.ID, "period-label").text == "2026-10-31"
    assert value(browser, "#total-fx-missing") == 1
    assert value(browser, "#total-cost") is None
    # A custom period and a currency.
    load(browser, served.page("", "period=custom&from=2026-09-01&to=2026-11-30&currency=RUB"))
    wide = served.rows(
        "SELECT sum(cost_nano) AS cost FROM v_margin_daily WHERE day >= :a AND day < :b",
        a="2026-09-01",
        b="2026-12-01",
    )[0]
    assert value(browser, "#total-cost") == nano(wide.cost)
    assert [r.get_attribute("data-currency") for r in
            browser.find_elements(By.CSS_SELECTOR, "#billing tbody tr")] == ["RUB"]  # fmt: skip


def test_disputes_are_the_view_largest_first_and_drill_down_to_the_message(
    browser: Any, served: Served
) -> None:
    load(browser, served.page("disputes", OCTOBER))
    groups = served.rows(
        "SELECT kind, currency, count(*) AS n, sum(amount_at_stake_nano) AS at_stake "
        "FROM v_open_mismatches GROUP BY kind, currency"
    )
    shown = browser.find_elements(By.CSS_SELECTOR, "#dispute-groups tbody tr")
    assert len(shown) == len(groups)
    figures = {
        tr.get_attribute("data-kind"): (
            int(tr.find_elements(By.TAG_NAME, "td")[2].text),
            tr.find_element(By.CSS_SELECTOR, "td[data-value]").get_attribute("data-value"),
        )
        for tr in shown
    }
    for g in groups:
        count, amount = figures[g.kind]
        assert count == g.n
        assert (Decimal(amount) if amount else None) == nano(g.at_stake)
    amounts = [Decimal(a) for _c, a in figures.values() if a]
    assert amounts == sorted(amounts, reverse=True)
    # The most expensive open dispute is the first row; its link opens its message.
    biggest = served.rows(
        "SELECT message_id, kind FROM v_open_mismatches WHERE amount_at_stake_nano IS NOT NULL "
        "ORDER BY amount_at_stake_nano DESC, id LIMIT 1"
    )[0]
    # h1's negative margin: 5.00 RUB of cost against 2.27 of revenue, 2.73 at stake.
    assert (biggest.message_id, biggest.kind) == ("h1", "negative_margin")
    first = browser.find_element(By.CSS_SELECTOR, "table.disputes a.message-link")
    assert first.text == biggest.message_id
    first.click()
    WebDriverWait(browser, 60).until(lambda d: "/dashboard/message/h1" in d.current_url)
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.ready === '1'")
    )
    assert browser.find_element(By.ID, "message-id").text == "h1"
    mismatches = browser.find_elements(By.CSS_SELECTOR, "#message-mismatches tr.mismatch")
    assert any("negative_margin" in m.text for m in mismatches)
    # The invoice dispute next: g1, billed by mts although it was rejected.
    load(browser, served.page("disputes", OCTOBER))
    link = browser.find_element(By.CSS_SELECTOR, "tr[data-kind='billed_but_rejected'] a")
    link.click()
    WebDriverWait(browser, 60).until(lambda d: d.current_url.endswith("#kind-2"))
    row = browser.find_element(By.CSS_SELECTOR, "#kind-2 a.message-link")
    assert row.text == "g1"
    row.click()
    WebDriverWait(browser, 60).until(lambda d: "/dashboard/message/g1" in d.current_url)
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.ready === '1'")
    )
    kinds = browser.find_element(By.ID, "message-mismatches").text
    assert "billed_but_rejected" in kinds


def test_the_message_page_shows_what_explain_shows(browser: Any, served: Served) -> None:
    from click.testing import CliRunner

    from pipeline.cli.main import cli

    result = CliRunner().invoke(
        cli, ["--config", str(served.config), "--database-url", served.database_url,
              "explain", "a1", "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    doc = json.loads(result.stdout)
    load(browser, served.page("message/a1"))
    events = browser.find_elements(By.CSS_SELECTOR, "tr.event")
    assert [e.get_attribute("id") for e in events] == [
        f"event-{e['position']}" for e in doc["events"]
    ]
    for row, e in zip(events, doc["events"], strict=True):
        assert e["effect"] in row.text and e["type"] in row.text
    status = served.rows(
        "SELECT expected_cost_nano, reported_cost_nano, invoiced_cost_nano, carrier_cost_nano, "
        "margin_nano, acked_revenue_minor, acked_currency_exponent FROM v_message_status "
        "WHERE message_id = 'a1'"
    )[0]
    costs = browser.find_elements(By.CSS_SELECTOR, "#costs td[data-value]")
    figures = [c.get_attribute("data-value") for c in costs]
    units = (status.expected_cost_nano, status.reported_cost_nano, status.invoiced_cost_nano,
             status.carrier_cost_nano)  # fmt: skip
    assert [Decimal(f) if f else None for f in figures] == [nano(u) for u in units]
    assert value(browser, "#msg-margin") == nano(status.margin_nano)
    assert value(browser, "#msg-revenue") == Decimal(status.acked_revenue_minor).scaleb(
        -status.acked_currency_exponent
    )
    money = next(s for s in doc["sections"] if s["title"] == "Money")["rows"][0]
    page = browser.find_element(By.ID, "money").text
    for key in ("carrier_cost_expected", "carrier_cost_invoiced", "margin", "tariff"):
        assert str(money[key]) in page, key
    section = next(s for s in doc["sections"] if s["title"] == "Mismatches")
    mismatch_ids = [str(m["id"]) for m in section["rows"]]
    shown = browser.find_elements(By.CSS_SELECTOR, "#message-mismatches tr.mismatch")
    assert [m.find_element(By.TAG_NAME, "td").text for m in shown] == mismatch_ids
    # The invoice line links to the invoice and to the event that carried it.
    line_event = browser.find_element(By.CSS_SELECTOR, "#invoice-lines a[href^='#event-']")
    target = line_event.get_attribute("href").split("#")[1]
    assert browser.find_element(By.ID, target).tag_name == "tr"


def test_the_invoices_page_is_the_view(browser: Any, served: Served) -> None:
    load(browser, served.page("invoices", OCTOBER))
    rows = served.rows(
        "SELECT invoice_id, stated_total_nano, lines_total_nano, matched_amount_nano, "
        "disputed_amount_nano, closed FROM v_invoices"
    )
    assert rows
    for r in rows:
        tr = browser.find_element(By.CSS_SELECTOR, f"tr[data-invoice='{r.invoice_id}']")
        for css, units in (("stated", r.stated_total_nano), ("lines", r.lines_total_nano),
                           ("matched", r.matched_amount_nano),
                           ("disputed", r.disputed_amount_nano)):  # fmt: skip
            shown = tr.find_element(By.CSS_SELECTOR, f"td.{css}").get_attribute("data-value")
            assert (Decimal(shown) if shown else None) == nano(units), css
        assert tr.find_element(By.CSS_SELECTOR, "td.state").text == (
            "closed" if r.closed else "open"
        )


def test_hostile_names_are_shown_as_text(browser: Any, served: Served) -> None:
    for path in ("", "margin", "disputes"):
        load(browser, served.page(path, OCTOBER))
        assert browser.execute_script("return window.__pwned === undefined")
        assert browser.find_elements(By.CSS_SELECTOR, "main img, header img, form img") == []
        partners = [o.text for o in Select(browser.find_element(By.ID, "partner")).options]
        carriers = [o.get_attribute("value") for o in
                    Select(browser.find_element(By.ID, "carrier")).options]  # fmt: skip
        if path != "disputes":
            assert HOSTILE_PARTNER in partners
            assert HOSTILE_CARRIER in carriers
    load(browser, served.page("margin", OCTOBER))
    assert HOSTILE_PARTNER in browser.find_element(By.ID, "by-partner").text
    load(browser, served.page("message/h1"))
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.find_element(By.ID, "msg-partner").text == HOSTILE_PARTNER
    assert browser.find_element(By.ID, "msg-carrier").text == HOSTILE_CARRIER
    # Filtering by the hostile partner works like any other name.
    from urllib.parse import quote

    load(browser, served.page("", f"{OCTOBER}&partner={quote(HOSTILE_PARTNER)}"))
    assert browser.execute_script("return window.__pwned === undefined")
    chosen = Select(browser.find_element(By.ID, "partner")).first_selected_option
    assert chosen.text == HOSTILE_PARTNER


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_downloads_are_the_files_smsrecon_report_writes(
    browser: Any, served: Served, tmp_path: Path, fmt: str
) -> None:
    import urllib.request

    from click.testing import CliRunner

    from pipeline.cli.main import cli

    load(browser, served.page("downloads", OCTOBER + "&partner=acme"))
    links = browser.find_elements(By.CSS_SELECTOR, f"a.download.{fmt}")
    assert len(links) == 7
    for link in links:
        href = link.get_attribute("href")
        name = urlsplit(href).path.rsplit("/", 1)[1].split(".")[0]
        with urllib.request.urlopen(href, timeout=120) as response:
            got = response.read()
        out = tmp_path / f"{name}.{fmt}"
        result = CliRunner().invoke(
            cli, ["--config", str(served.config), "--database-url", served.database_url,
                  "report", name, "--from", "2026-10-01", "--to", "2026-11-01",
                  "--partner", "acme", "--format", fmt, "--output", str(out)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert got == out.read_bytes(), name
