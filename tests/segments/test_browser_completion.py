"""Completion you can see (issue 14), in a real Chromium against the built-in engine: Ctrl+Space
opens a list at the caret that stays inside the viewport and is clipped by nothing; it offers
the fields of the context the caret is in (event fields after xEvent., inside xEvent[…], a
chain's WHAT(…) and after a select variable; profile fields elsewhere), the sandbox's saved
segments by name inside inSegment("…") (inserting the id), and a saved segment shows its id."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SCREENSHOTS
from tests.segments.test_editor import create, signed_in
from tests.test_browser_shell import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PQL = "[data-testid=pql-input]"
POPUP = "[data-testid=pql-complete]"
OPTIONS = f"{POPUP} [role=option]"
ITEMS_HEADING = "Event fields · productListItems items"

# 24 lines: longer than the editor box, so its last lines are reached by scrolling inside it
LONG = "\n".join(
    ['homeAddress.countryCode = "US"']
    + [f'  and (select X{n} from xEvent where X{n}.commerce.order.priceTotal > {n * 10})'
       for n in range(1, 22)]
    + ['  and person.name.firstName.isNotNull()', "  and homeAddress.c"]
)


def viewport_shot(page: Any, name: str) -> None:
    """What the user sees (not the full page: the list is fixed to the viewport)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def open_editor(page: Any, studio: Any, path: str = "/segments/new/") -> None:
    sign_in(page, studio, "maya")
    page.goto(f"{studio.url}{path}")
    page.wait_for_selector("#field-list li")
    page.wait_for_function("() => document.querySelector('.pql-editor[data-ready]')")


def type_fresh(page: Any, text: str) -> None:
    editor = page.locator(PQL)
    editor.fill("")
    editor.focus()
    page.keyboard.type(text)


def labels(page: Any) -> list[str]:
    texts = page.locator(f"{OPTIONS} .pql-complete-label").all_inner_texts()
    return [text.strip() for text in texts]


def popup_geometry(page: Any) -> dict[str, Any]:
    """The list's box, the viewport, the editor's box, the caret's line box, and whether the
    list is what the user sees at its centre and at its corners."""
    return page.evaluate("""() => {
        const popup = document.querySelector('[data-testid=pql-complete]');
        const list = popup.querySelector('[role=listbox]');
        const box = popup.getBoundingClientRect();
        const editor = document.querySelector('.pql-editor').getBoundingClientRect();
        const at = (x, y, box) => { const el = document.elementFromPoint(x, y);
                                    return !!el && box.contains(el); };
        const inside = (x, y) => at(x, y, popup);
        return {
            hidden: popup.hidden, placement: popup.dataset.placement,
            left: box.left, top: box.top, right: box.right, bottom: box.bottom,
            width: window.innerWidth, height: window.innerHeight,
            viewWidth: document.documentElement.clientWidth,
            editorBottom: editor.bottom, editorTop: editor.top,
            centre: inside(box.left + box.width / 2, box.top + box.height / 2),
            corners: inside(box.left + 3, box.top + 3) && inside(box.right - 3, box.bottom - 3),
            listCentre: (() => { const r = list.getBoundingClientRect();
                                 return at(r.left + r.width / 2, r.top + r.height / 2, list); })(),
        };
    }""")


def caret_line(page: Any) -> dict[str, float]:
    """The caret's line on screen, measured with a range over the highlight layer (it lays the
    text out exactly as the textarea does, and scrolls with it)."""
    return page.evaluate("""() => {
        const ta = document.querySelector('#id_pql');
        const layer = document.querySelector('.pql-highlight');
        const walker = document.createTreeWalker(layer, NodeFilter.SHOW_TEXT);
        let left = ta.selectionStart, node;
        while ((node = walker.nextNode())) {
            if (left <= node.length) break;
            left -= node.length;
        }
        const range = document.createRange();
        range.setStart(node, Math.max(0, left - 1)); range.setEnd(node, left);
        const r = range.getBoundingClientRect();
        return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};
    }""")


def assert_visible_at_caret(page: Any) -> dict[str, Any]:
    geometry = popup_geometry(page)
    assert not geometry["hidden"]
    assert geometry["left"] >= 0 and geometry["right"] <= geometry["viewWidth"], geometry
    assert geometry["top"] >= 0 and geometry["bottom"] <= geometry["height"], geometry
    assert geometry["centre"] and geometry["corners"] and geometry["listCentre"], geometry
    caret = caret_line(page)
    if geometry["placement"] == "below":
        assert 0 <= geometry["top"] - caret["bottom"] <= 12, (geometry, caret)
    else:
        assert 0 <= caret["top"] - geometry["bottom"] <= 12, (geometry, caret)
    return geometry


def test_ctrl_space_on_the_last_line_of_a_long_definition_shows_the_list_in_the_viewport(
        page: Any, studio: Any, marketer: Any) -> None:
    open_editor(page, studio)
    editor = page.locator(PQL)
    editor.fill(LONG)
    editor.focus()
    page.keyboard.press("Control+End")
    assert page.evaluate("() => document.querySelector('#id_pql').scrollTop") > 0  # scrolled inside

    page.keyboard.press("Control+Space")
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    geometry = assert_visible_at_caret(page)
    assert geometry["placement"] == "below"
    assert geometry["bottom"] > geometry["editorBottom"]  # past the editor's box, yet not clipped
    assert labels(page)[:2] == ["homeAddress.city", "homeAddress.countryCode"]
    assert page.text_content(f"{POPUP} .pql-complete-head") == "Profile fields"
    viewport_shot(page, "completion-last-line-below")

    # the editor's bottom at the viewport's bottom: no room below the caret, so it opens above
    page.keyboard.press("Escape")
    assert page.locator(POPUP).is_hidden()
    bottom = page.evaluate(
        "() => document.querySelector('.pql-editor').getBoundingClientRect().bottom")
    page.set_viewport_size({"width": 1360, "height": int(bottom) + 12})
    page.keyboard.press("Control+Space")
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    geometry = assert_visible_at_caret(page)
    assert geometry["placement"] == "above"
    viewport_shot(page, "completion-last-line-above")

    # keyboard: down, Enter inserts; the list closes
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.locator(POPUP).is_hidden()
    assert editor.input_value().endswith("  and homeAddress.countryCode")


def test_near_the_right_edge_the_list_moves_left_to_stay_in_the_viewport(
        page: Any, studio: Any, marketer: Any) -> None:
    page.set_viewport_size({"width": 900, "height": 760})
    open_editor(page, studio)
    # a line that ends a few characters before the textarea's right edge
    chars = page.evaluate("""() => {
        const ta = document.querySelector('#id_pql'), style = getComputedStyle(ta);
        const ctx = document.createElement('canvas').getContext('2d');
        ctx.font = style.font;
        const width = ta.clientWidth - parseFloat(style.paddingLeft)
            - parseFloat(style.paddingRight);
        return Math.floor(width / ctx.measureText('x').width);
    }""")
    line = 'person.name.firstName = "' + "x" * (chars - 42) + '" and homeAddr'
    assert len(line) == chars - 3
    page.locator(PQL).fill(line)
    page.locator(PQL).focus()
    page.keyboard.press("End")
    page.keyboard.press("Control+Space")
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    geometry = assert_visible_at_caret(page)
    caret = caret_line(page)
    assert caret["right"] + 320 > geometry["viewWidth"]  # it would not fit at the caret
    assert geometry["right"] <= geometry["viewWidth"] - 4, geometry
    assert geometry["left"] < caret["left"]
    assert geometry["centre"] and geometry["corners"]
    viewport_shot(page, "completion-right-edge")


def test_event_fields_after_xevent_dot_and_inside_a_filter(page: Any, studio: Any,
                                                           marketer: Any) -> None:
    open_editor(page, studio)
    type_fresh(page, "xEvent.")
    page.wait_for_selector(f"{POPUP}:not([hidden])")  # a dot after xEvent opens it
    assert page.text_content(f"{POPUP} .pql-complete-head") == "Event fields"
    offered = labels(page)
    assert "commerce.order.priceTotal" in offered and "eventType" in offered
    assert "homeAddress.countryCode" not in offered and "person.name.firstName" not in offered
    assert_visible_at_caret(page)
    viewport_shot(page, "completion-xevent-dot")
    page.keyboard.type("eventT")
    assert labels(page) == ["eventType"]
    page.keyboard.press("Tab")
    assert page.locator(PQL).input_value() == "xEvent.eventType"

    type_fresh(page, 'xEvent[eventType = "commerce.purchases" and comm')
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    offered = labels(page)
    assert offered[:2] == ["commerce", "commerce.order"] and "metrics.commerce" in offered
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.locator(PQL).input_value() == (
        'xEvent[eventType = "commerce.purchases" and commerce.order')

    # outside the filter, profile fields again
    type_fresh(page, 'xEvent[eventType = "x"].count() > 0 and homeA')
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    assert page.text_content(f"{POPUP} .pql-complete-head") == "Profile fields"
    assert labels(page)[0] == "homeAddress"


def test_select_variables_complete_the_fields_of_what_they_range_over(
        page: Any, studio: Any, marketer: Any) -> None:
    open_editor(page, studio)
    type_fresh(page, "select X from xEvent where X.")
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    offered = labels(page)
    assert "commerce.order.priceTotal" in offered and "homeAddress.countryCode" not in offered
    page.keyboard.type("order")  # any part of a path finds it
    assert labels(page)[0] == "commerce.order"
    page.keyboard.press("Enter")
    assert page.locator(PQL).input_value() == "select X from xEvent where X.commerce.order"

    page.keyboard.type(" and (select I from X.productListItems where I.")
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    assert page.text_content(f"{POPUP} .pql-complete-head") == ITEMS_HEADING
    assert sorted(labels(page)) == ["SKU", "currencyCode", "name", "priceTotal", "quantity"]
    viewport_shot(page, "completion-select-variable")
    # the mouse chooses too
    page.click(f"{OPTIONS}:has-text('SKU')")
    assert page.locator(PQL).input_value().endswith("where I.SKU")
    assert page.locator(POPUP).is_hidden()
    assert page.evaluate("() => document.activeElement.id") == "id_pql"  # focus stays

    # an unprefixed path in the select's condition is still a profile field
    page.keyboard.type(' = "PS") and homeAddress.cou')
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    assert labels(page) == ["homeAddress.countryCode"]


def test_chain_what_completes_event_fields(page: Any, studio: Any, marketer: Any) -> None:
    open_editor(page, studio)
    type_fresh(page, "chain(xEvent, timestamp, [A: WHAT(eventT")
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    assert page.text_content(f"{POPUP} .pql-complete-head") == "Event fields"
    assert labels(page) == ["eventType"]
    page.keyboard.press("Enter")
    page.keyboard.type(' = "commerce.checkouts") WHERE(productListItems.exists(pri')
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    assert page.text_content(f"{POPUP} .pql-complete-head") == ITEMS_HEADING
    assert labels(page) == ["priceTotal"]
    page.keyboard.press("Escape")
    assert page.locator(POPUP).is_hidden()
    page.keyboard.press("Control+Space")  # reopens where it was
    assert labels(page) == ["priceTotal"]
    page.keyboard.press("Enter")
    assert page.locator(PQL).input_value() == (
        'chain(xEvent, timestamp, [A: WHAT(eventType = "commerce.checkouts") '
        "WHERE(productListItems.exists(priceTotal")


# text (| is the caret), the list's heading, and the first choices it offers
CONTEXTS = [
    ("xEvent[productListItems[S", ITEMS_HEADING, ["SKU"]),
    ("xEvent[productListItems[^.eventT", "Event fields", ["eventType"]),
    ("xEvent[productListItems[^^.homeAddress.ci", "Profile fields", ["homeAddress.city"]),
    ('xEvent[eventType = "a"].sum(commerce.order.pr', "Event fields",
     ["commerce.order.priceTotal"]),
    ('xEvent[eventType = "a"].count() > 1 and homeAddress.ci', "Profile fields",
     ["homeAddress.city"]),
    ("sum X.commerce.order.pr| over X from xEvent", "Event fields",
     ["commerce.order.priceTotal"]),
    ("exists E from xEvent where E.eventT", "Event fields", ["eventType"]),
    ('select X from xEvent where X.eventType = "(" and X.eventT', "Event fields", ["eventType"]),
    ("select X from xEvent where X.timestamp occurs before today and "
     "(select I from X.productListItems where I.qu", ITEMS_HEADING, ["quantity"]),
    ("select O1 from xEvent where O1.commerce.order, O2 from xEvent where O2.eventT",
     "Event fields", ["eventType"]),
    ('CHAIN(xEvent, timestamp, [C0: WHAT(eventType = "a") WHEN(today)]) and homeAddress.ci',
     "Profile fields", ["homeAddress.city"]),
    ('chain(xEvent, timestamp, [A: WHAT(eventType = "a"), B: WHAT(web.webPageDetails.U',
     "Event fields", ["web.webPageDetails.URL"]),
    ("xE", "Profile fields", ["xEvent"]),
    ('homeAddress.countryCode = "xEvent.', None, []),
    ('inSegment(|) and x', "Saved segments · inserts the id", ['"s-1"']),
    ("x and inSegment(", "Saved segments · inserts the id", ['"s-1")']),
    ('inSegment("|")', "Saved segments · inserts the id", ['s-1"']),
    ('inSegment("gold', "Saved segments · inserts the id", ['s-1")']),
]


def test_completion_reads_the_context_the_caret_is_in(page: Any, studio: Any,
                                                      marketer: Any) -> None:
    open_editor(page, studio)
    found = page.evaluate("""cases => cases.map(text => {
        const fields = JSON.parse(document.getElementById('pql-fields').textContent);
        const segments = [{id: 's-1', name: 'Gold members'}];
        const at = text.indexOf('|') === -1 ? text.length : text.indexOf('|');
        const result = PQLEditor.completionAt(text.replace('|', ''), at, fields, segments);
        return result && [result.title, result.choices.map(c => c.insert)];
    })""", [text for text, _, _ in CONTEXTS])
    for (text, heading, first), result in zip(CONTEXTS, found, strict=True):
        if heading is None:
            assert result is None, text
            continue
        assert result[0] == heading, text
        assert result[1][:len(first)] == first, (text, result[1][:5])


def test_the_list_is_a_listbox_the_textarea_points_into(page: Any, studio: Any,
                                                      marketer: Any) -> None:
    open_editor(page, studio)
    type_fresh(page, "xEvent.commerce")
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    textarea = page.locator(PQL)
    listbox = page.locator(f"{POPUP} [role=listbox]")
    assert textarea.get_attribute("aria-controls") == listbox.get_attribute("id")
    assert textarea.get_attribute("aria-autocomplete") == "list"
    first = page.locator(OPTIONS).nth(0)
    assert textarea.get_attribute("aria-activedescendant") == first.get_attribute("id")
    assert first.get_attribute("aria-selected") == "true"
    page.keyboard.press("ArrowDown")
    second = page.locator(OPTIONS).nth(1)
    assert textarea.get_attribute("aria-activedescendant") == second.get_attribute("id")
    assert second.get_attribute("aria-selected") == "true"
    assert first.get_attribute("aria-selected") == "false"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")  # wraps to the last
    last = page.locator(OPTIONS).last
    assert last.get_attribute("aria-selected") == "true"
    # leaving the editor closes it, and the textarea no longer points at it
    page.locator("#id_name").focus()
    assert page.locator(POPUP).is_hidden()
    assert textarea.get_attribute("aria-activedescendant") is None
    assert textarea.get_attribute("aria-controls") is None


def test_scrolling_keeps_the_list_at_the_caret_or_closes_it(page: Any, studio: Any,
                                                           marketer: Any) -> None:
    page.set_viewport_size({"width": 1360, "height": 600})
    open_editor(page, studio)
    # a tall editor (its corner dragged down), so the page scrolls its first line out of sight
    page.evaluate("() => { document.querySelector('#id_pql').style.height = '1200px'; }")
    type_fresh(page, "xEvent.")
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    page.mouse.move(10, 300)  # over the page, not the list
    page.mouse.wheel(0, 60)
    page.wait_for_function("() => window.scrollY > 0")
    assert_visible_at_caret(page)  # followed the caret
    page.mouse.wheel(0, 800)  # the caret leaves the viewport
    page.wait_for_selector(POPUP, state="hidden")

    # the editor's own text scrolling the caret out of its box closes it too
    page.evaluate("() => { window.scrollTo(0, 0);"
                  " document.querySelector('#id_pql').style.height = ''; }")
    editor = page.locator(PQL)
    editor.fill(LONG)
    editor.focus()
    page.keyboard.press("Control+End")
    page.keyboard.press("Control+Space")
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    page.evaluate("() => { document.querySelector('#id_pql').scrollTop = 0; }")
    page.wait_for_selector(POPUP, state="hidden")


def test_in_segment_offers_saved_segments_by_name_and_inserts_the_id(
        page: Any, studio: Any, marketer: Any) -> None:
    from segments.models import Segment

    client = signed_in(marketer)
    assert create(client, name="VIP customers", pql='loyalty.tier = "gold"').status_code == 302
    assert create(client, name="Cart abandoners",
                  pql="select X from xEvent where X.commerce.cartAbandons").status_code == 302
    vip = Segment.objects.get(name="VIP customers").remote_id
    cart = Segment.objects.get(name="Cart abandoners").remote_id

    open_editor(page, studio)
    type_fresh(page, 'homeAddress.countryCode = "US" and inSegment("')
    page.wait_for_selector(f"{POPUP}:not([hidden])")  # the quote opens it
    assert labels(page) == ["Cart abandoners", "VIP customers"]
    details = page.locator(f"{OPTIONS} .pql-complete-detail").all_inner_texts()
    assert details == [cart[:8] + "…", vip[:8] + "…"]
    assert page.text_content(f"{POPUP} .pql-complete-head").startswith("Saved segments")
    assert_visible_at_caret(page)
    viewport_shot(page, "completion-in-segment")
    page.keyboard.type("vip")
    assert labels(page) == ["VIP customers"]
    page.keyboard.press("Enter")
    text = f'homeAddress.countryCode = "US" and inSegment("{vip}")'
    assert page.locator(PQL).input_value() == text
    assert page.evaluate("() => document.querySelector('#id_pql').selectionStart") == len(text)
    page.wait_for_selector("[data-testid=pql-ok]")  # the id is one the checker knows

    # between quotes already there: Ctrl+Space, and the quotes stay balanced
    editor = page.locator(PQL)
    editor.fill('inSegment("") and homeAddress.countryCode = "US"')
    editor.focus()
    page.evaluate("() => document.querySelector('#id_pql').setSelectionRange(11, 11)")
    page.keyboard.press("Control+Space")
    page.wait_for_selector(f"{POPUP}:not([hidden])")
    page.click(f"{OPTIONS}:has-text('Cart abandoners')")
    assert editor.input_value() == f'inSegment("{cart}") and homeAddress.countryCode = "US"'
    page.wait_for_selector("[data-testid=pql-ok]")


def test_a_saved_segment_shows_its_id_with_a_copy_button(page: Any, studio: Any,
                                                        marketer: Any) -> None:
    from segments.models import Segment

    assert create(signed_in(marketer), name="VIP customers",
                  pql='loyalty.tier = "gold"').status_code == 302
    segment = Segment.objects.get()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=studio.url)
    open_editor(page, studio, f"/segments/{segment.pk}/")
    shown = page.locator("[data-testid=segment-id]")
    assert shown.inner_text() == segment.remote_id
    assert "monospace" in shown.evaluate("e => getComputedStyle(e).fontFamily")
    title = page.locator("h1").bounding_box()
    chip = page.locator("[data-testid=segment-id-row]").bounding_box()
    middle = title["y"] + title["height"] / 2
    assert abs(chip["y"] + chip["height"] / 2 - middle) < 12  # beside it, not under it
    copy = page.locator("[data-testid=copy-segment-id]")
    assert copy.is_visible()
    copy.click()
    page.wait_for_selector("[data-testid=copy-segment-id]:has-text('Copied')")
    assert page.evaluate("() => navigator.clipboard.readText()") == segment.remote_id
    viewport_shot(page, "segment-editor-id")
