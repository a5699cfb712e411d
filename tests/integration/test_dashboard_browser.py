"""The supervisor page in headless Debian Chromium, driven by Playwright."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.integration.browser import DESKTOP, LAPTOP, PHONE, open_with_token, send, shot
from tests.integration.conftest import Stack
from tests.integration.harness import chat_event, post_json

pytestmark = [pytest.mark.broker, pytest.mark.browser]
@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    yield context.new_page()
    context.close()


def in_viewport(page: Page, locator: Locator) -> bool:
    """The element is wholly inside the page's viewport (not cut off, not scrolled away)."""
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size["width"] + 0.5 \
        and box["y"] + box["height"] <= size["height"] + 0.5


def focused(page: Page) -> dict[str, str]:
    """What has the keyboard focus: its data-act and the conversation of its row."""
    result: dict[str, str] = page.evaluate(
        "() => ({act: document.activeElement?.dataset?.act || '',"
        " conv: document.activeElement?.closest('tr')?.dataset?.conversation || ''})")
    return result


def sign_in(page: Page, stack: Stack, username: str, password: str) -> None:
    page.goto(f"{stack.api_url}/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login button[type=submit]")
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=15_000)


def add_user(stack: Stack, body: dict[str, str]) -> None:
    status, answer = post_json(f"{stack.api_url}/api/users", stack.token, body)
    assert status in (201, 409), answer  # 409: already there from an earlier test of this module


def scoreboard_row(page: Page, agent_id: str) -> Locator:
    """The agent's scoreboard row, once their closed conversation is scored (the board refreshes every
    15 s; switching tabs reloads it sooner)."""
    page.click(".tab[data-tab=scores]")
    row = page.locator(f"#scoreboard tr[data-agent-id={agent_id}]")
    for _attempt in range(8):
        if row.count():
            break
        page.wait_for_timeout(1500)
        page.click(".tab[data-tab=wall]")
        page.click(".tab[data-tab=scores]")
    return row


def closed_conversation(stack: Stack, conv: str, agent: str, reply: str) -> None:
    """A conversation a minute old: the customer asks, ``agent`` replies and says goodbye, it ends."""
    now = int(time.time() * 1000) - 60_000
    send(stack, [chat_event(f"{conv}-c", conv, "customer", "在吗", agent=None, ts_ms=now),
                 chat_event(f"{conv}-a", conv, "agent", reply, agent=agent, ts_ms=now + 3000),
                 chat_event(f"{conv}-z", conv, "agent", "感谢您的耐心，再见", agent=agent, ts_ms=now + 8000),
                 chat_event(f"{conv}-e", conv, "system", "", agent=None, etype="conversation_ended", ts_ms=now + 9000)])


def answer(page: Page, *values: str, tap: bool = False) -> None:
    """Fill the page's own dialog (ask.js: no window.prompt) field by field, and confirm it."""
    dialog = page.locator("dialog#ask")
    expect(dialog).to_be_visible()
    fields = dialog.locator("input, textarea")
    expect(fields).to_have_count(len(values))
    for i, value in enumerate(values):
        fields.nth(i).fill(value)
    if tap:
        dialog.locator("#ask-ok").tap()
    else:
        dialog.locator("#ask-ok").click()
    expect(dialog).to_be_hidden()





def test_one_row_per_offending_message_and_a_quiet_alarm(stack: Stack, page: Page) -> None:
    open_with_token(page, stack)
    # a tab in the background counts what it has not shown yet in its title
    page.evaluate("() => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => true}); }")
    conv = f"conv-{uuid.uuid4().hex[:8]}"
    message_id = uuid.uuid4().hex
    send(stack, [chat_event(f"{message_id}-q", conv, "customer", "在吗"),
                 chat_event(message_id, conv, "agent", "嗯嗯，你自己去看吧", agent="agent-9")])
    # 嗯嗯 (particle), 你 (address) and 你自己去看 (deflection) are three findings on one message: one row
    row = page.locator("#alerts tr", has_text=conv)
    expect(row).to_have_count(1, timeout=20_000)
    expect(row).to_have_attribute("data-findings", "3", timeout=10_000)
    for name in ("语气词不当", "推诿", "称呼不当"):
        expect(row.locator(".c-rule")).to_contain_text(name)
    expect(row.locator("mark")).to_have_text(["嗯嗯", "你自己去看"])
    expect(row).to_contain_text("agent-9")
    expect(row.locator(".sev")).to_have_text("严重")
    expect(page.locator("#announcer")).to_contain_text("新的严重告警", timeout=5_000)
    expect(page.locator("#top")).to_have_attribute("data-alarms", "1")
    expect(page).to_have_title("(1) 质检 zhijian")

    # the keyboard focus stays on the 认领 button it was on while new rows arrive above it
    row.locator("button[data-act=claim]").focus()
    other = f"conv-{uuid.uuid4().hex[:8]}"
    send(stack, [chat_event(f"{other}-m", other, "agent", "爱买不买", agent="agent-8")])
    expect(page.locator("#alerts tr", has_text=other)).to_have_count(1, timeout=20_000)
    assert focused(page) == {"act": "claim", "conv": conv}
    # a second critical alert within the 30 s interval: announced, not flashed again
    expect(page.locator("#announcer")).to_contain_text(other)
    expect(page.locator("#top")).to_have_attribute("data-alarms", "1")
    expect(page).to_have_title("(2) 质检 zhijian")
    page.evaluate("() => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
                  " document.dispatchEvent(new Event('visibilitychange')); }")
    expect(page).to_have_title("质检 zhijian")
    shot(page, "wall-1920.png")

    # the conversation view: the transcript, the flagged span, the message the alert points at
    row.locator("a.conv-link").click()
    dialog = page.locator("#conversation")
    expect(dialog).to_be_visible()
    focus = dialog.locator("li.focus")
    expect(focus.locator("mark").first).to_have_text("嗯嗯")
    expect(dialog.locator("li.customer")).to_contain_text("在吗")
    assert in_viewport(page, page.locator("#conv-close"))
    shot(page, "conversation-1920.png")
    page.click("#conv-close")

    # after a reload the alerts come back from the database (the persist agent lags the live feed by a
    # moment), still one row
    for _attempt in range(6):
        page.reload()
        expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=15_000)
        if page.locator("#alerts tr[data-findings='3']", has_text=conv).count() == 1:
            break
        page.wait_for_timeout(3000)
    expect(page.locator("#alerts tr", has_text=conv)).to_have_count(1, timeout=10_000)
    expect(page.locator("#alerts tr", has_text=conv)).to_have_attribute("data-findings", "3")


def test_wrong_credentials_are_refused_on_the_page(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.api_url}/")
    page.fill("#username", "nobody")
    page.fill("#password", "not-the-password")
    page.click("#login button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("用户名或密码错误", timeout=10_000)
    page.goto(f"{stack.api_url}/#token=not-the-token")
    expect(page.locator("#login-error")).to_contain_text("登录已失效", timeout=10_000)
    expect(page.locator("#wall")).to_be_hidden()
    assert "not-the-token" not in page.url  # the fragment is cleared from the address bar


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])
def test_the_waiting_board_and_the_waiting_alert_follow_the_conversation(
        stack: Stack, browser: Browser, viewport: dict[str, int]) -> None:
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    try:
        page = context.new_page()
        open_with_token(page, stack)
        conv = f"wait-{uuid.uuid4().hex[:8]}"
        now = int(time.time() * 1000)
        # the customer has waited 35 s: past the board (15 s) and the warning (30 s) thresholds
        send(stack, [chat_event(f"{conv}-c1", conv, "customer", "在吗？急", agent=None, ts_ms=now - 35_000)])
        item = page.locator(f'#waiting li[data-conversation-id="{conv}"]')
        expect(item).to_be_visible(timeout=15_000)
        expect(item).to_have_attribute("data-level", "1")
        expect(item).to_contain_text("shop-1")
        card = item.locator("a[href]")
        expect(card).to_have_count(1)  # a real link: reachable by keyboard
        item.scroll_into_view_if_needed()
        assert in_viewport(page, item.locator(".waited"))  # the seconds are not cut off
        alert_row = page.locator("#alerts tr", has_text=conv).filter(has_text="顾客等待")
        expect(alert_row).to_have_count(1, timeout=15_000)
        expect(alert_row).to_have_attribute("data-alert-state", "open")
        shot(page, f"waiting-board-{viewport['width']}.png")

        card.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#conversation")).to_be_visible()
        assert in_viewport(page, page.locator("#conv-title")) and in_viewport(page, page.locator("#conv-close"))
        page.click("#conv-close")

        send(stack, [chat_event(f"{conv}-a1", conv, "agent", "抱歉久等了，马上为您处理", agent="agent-3")])
        expect(item).to_have_count(0, timeout=15_000)
        # the same row, now answered: one row per waiting episode, never a second one
        expect(alert_row).to_have_attribute("data-alert-state", "cleared", timeout=15_000)
        expect(page.locator("#alerts tr", has_text=conv).filter(has_text="顾客等待")).to_have_count(1)
    finally:
        context.close()


def test_claim_note_resolve_from_a_phone_seen_live_on_the_wall(stack: Stack, browser: Browser) -> None:
    add_user(stack, {"username": "sup-1", "password": "sup-1-password", "role": "supervisor",
                     "display_name": "王主管"})
    add_user(stack, {"username": "lead-a", "password": "lead-a-password", "role": "floor_lead",
                     "team_id": "team-a", "display_name": "李组长"})
    contexts = [browser.new_context(viewport=size, locale="zh-CN", has_touch=size is PHONE)
                for size in (DESKTOP, PHONE)]
    try:
        supervisor, lead = (context.new_page() for context in contexts)
        sign_in(supervisor, stack, "sup-1", "sup-1-password")
        sign_in(lead, stack, "lead-a", "lead-a-password")
        expect(lead.locator("#who")).to_contain_text("李组长 · 组长")

        conv_b, conv_a = f"conv-b-{uuid.uuid4().hex[:6]}", f"conv-a-{uuid.uuid4().hex[:6]}"
        send(stack, [chat_event(f"{conv_b}-m", conv_b, "agent", "爱买不买", agent="agent-b1", team="team-b"),
                     chat_event(f"{conv_a}-m", conv_a, "agent", "爱买不买", agent="agent-a1", team="team-a")])
        for page in (supervisor, lead):
            expect(page.locator("#alerts tr", has_text=conv_a)).to_have_count(1, timeout=20_000)
        expect(supervisor.locator("#alerts tr", has_text=conv_b)).to_have_count(1, timeout=20_000)
        # team B's alert was produced first: the floor lead of team A never receives it
        expect(lead.locator("#alerts tr", has_text=conv_b)).to_have_count(0)

        # the phone: a card inside the screen, large buttons, the waiting board above the wall
        card = lead.locator("#alerts tr", has_text=conv_a)
        claim = card.locator("button[data-act=claim]")
        box = claim.bounding_box()
        assert box is not None and box["height"] >= 44
        card_box = card.bounding_box()
        assert card_box is not None and card_box["x"] >= 0 and card_box["x"] + card_box["width"] <= 390
        waiting_box, alerts_box = lead.locator(".waiting").bounding_box(), lead.locator(".wall-alerts").bounding_box()
        assert waiting_box is not None and alerts_box is not None and waiting_box["y"] < alerts_box["y"]
        shot(lead, "floor-lead-wall-390.png")

        claim.tap()
        sup_row = supervisor.locator("#alerts tr", has_text=conv_a)
        expect(sup_row.locator(".state")).to_contain_text("lead-a 已认领", timeout=15_000)
        card.locator("button[data-act=note]").tap()
        answer(lead, "已提醒坐席注意用语", tap=True)
        expect(sup_row.locator(".notes")).to_contain_text("lead-a：已提醒坐席注意用语", timeout=15_000)
        expect(card.locator(".notes")).to_contain_text("已提醒坐席注意用语")
        card.locator("button[data-act=resolved]").tap()
        answer(lead, "坐席已道歉", tap=True)
        # handled alerts leave the default (待处理) view, on every open dashboard
        expect(sup_row).to_have_count(0, timeout=15_000)
        expect(card).to_have_count(0)
        supervisor.select_option("#f-status", "handled")
        expect(sup_row).to_have_attribute("data-state", "resolved")
        expect(sup_row.locator(".state")).to_contain_text("lead-a 已处理")
        shot(supervisor, "supervisor-wall-handled-1920.png")

        # the notes in the conversation view
        sup_row.locator("a.conv-link").click()
        expect(supervisor.locator("#conv-notes")).to_contain_text("已提醒坐席注意用语", timeout=10_000)
        expect(supervisor.locator("#conv-notes")).to_contain_text("坐席已道歉")
        supervisor.click("#conv-close")
        expect(lead.locator("#f-status")).to_be_hidden()  # a phone shows the filters as one line until opened
        expect(lead.locator("#filter-summary")).to_have_text("待处理")
        lead.locator("#filter-box summary").tap()
        lead.select_option("#f-status", "handled")
        expect(lead.locator("#filter-summary")).to_have_text("已处理")
        lead.locator("#alerts tr", has_text=conv_a).locator("a.conv-link").tap()
        expect(lead.locator("#conv-notes")).to_contain_text("已提醒坐席注意用语", timeout=10_000)
        assert in_viewport(lead, lead.locator("#conv-title")) and in_viewport(lead, lead.locator("#conv-close"))
        shot(lead, "floor-lead-conversation-390.png")
        lead.click("#conv-close")

        lead.click("#lang")  # English on request, kept across reloads
        expect(lead.locator(".tab[data-tab=wall]")).to_have_text("Alerts")
        expect(lead.locator("#alerts tr", has_text=conv_a).locator(".state")).to_contain_text("resolved by lead-a")
        expect(lead.locator("#who")).to_contain_text("Floor lead")
        lead.reload()
        expect(lead.locator(".tab[data-tab=scores]")).to_have_text("Scoreboard")
    finally:
        for context in contexts:
            context.close()


def test_the_scoreboard_shows_running_scores_and_drills_down(stack: Stack, page: Page) -> None:
    closed_conversation(stack, f"conv-s-{uuid.uuid4().hex[:6]}", "agent-s", "您好，很高兴为您服务")
    open_with_token(page, stack)
    row = scoreboard_row(page, "agent-s")
    expect(row.locator("td").nth(2)).to_have_text("100.0")
    expect(row.locator("svg polyline")).to_have_count(1)
    row.locator("button").focus()
    page.keyboard.press("Enter")  # rows open from the keyboard too
    expect(page.locator("#agent-detail")).to_contain_text("服务态度")
    shot(page, "scoreboard.png")


def test_findings_of_one_message_share_a_row_and_filters_narrow_the_wall(stack: Stack, page: Page) -> None:
    open_with_token(page, stack)
    conv = f"conv-g-{uuid.uuid4().hex[:6]}"
    now = int(time.time() * 1000)
    # two offending messages 400 s apart (past the rule's 300 s throttle): two rows, one per message
    send(stack, [chat_event(f"{conv}-1", conv, "agent", "好的哦", agent="agent-g", team="team-g", ts_ms=now - 400_000),
                 chat_event(f"{conv}-2", conv, "agent", "稍等哦", agent="agent-g", team="team-g", ts_ms=now)])
    rows = page.locator("#alerts tr", has_text=conv)
    expect(rows).to_have_count(2, timeout=20_000)
    page.select_option("#f-team", "team-g")
    expect(page.locator("#alerts tr")).to_have_count(2)
    page.select_option("#f-rule", "conflict")
    expect(page.locator("#alerts tr")).to_have_count(0)
    page.select_option("#f-rule", "")
    page.fill("#f-agent", "agent-g")
    expect(page.locator("#alerts tr", has_text=conv)).to_have_count(2)
    page.select_option("#f-status", "mine")
    expect(page.locator("#alerts tr")).to_have_count(0)
    # every filter has a label a screen reader can read
    for select in ("#f-status", "#f-team", "#f-agent", "#f-rule", "#f-severity"):
        assert page.locator(select).evaluate("e => e.labels.length") == 1


def test_an_agent_appeals_a_finding_and_qa_decides_it_with_the_conversation_open(
        stack: Stack, browser: Browser) -> None:
    add_user(stack, {"username": "agent-ap", "password": "agent-ap-password", "role": "agent", "team_id": "t1"})
    add_user(stack, {"username": "qa-ap", "password": "qa-ap-password", "role": "qa"})
    conv = f"conv-ap-{uuid.uuid4().hex[:6]}"
    closed_conversation(stack, conv, "agent-ap", "您好，在的哦，请您稍等")
    contexts = [browser.new_context(viewport=size, locale="zh-CN") for size in (PHONE, LAPTOP)]
    try:
        agent, qa = (context.new_page() for context in contexts)
        sign_in(agent, stack, "agent-ap", "agent-ap-password")
        row = scoreboard_row(agent, "agent-ap")
        expect(agent.locator("#scoreboard tr")).to_have_count(1)  # an agent sees only themselves
        expect(row.locator("td").nth(2)).to_have_text("0.0")  # 哦 is fatal
        row.locator("button").click()
        finding = agent.locator("#agent-detail li[data-status=active]", has_text="语气词不当")
        expect(finding).to_contain_text("已生效")
        finding.locator("button[data-act=appeal]").click()
        answer(agent, "哦 是商品名的一部分")
        expect(agent.locator("#agent-detail li[data-status=appealed]", has_text="语气词不当")).to_have_count(1)

        sign_in(qa, stack, "qa-ap", "qa-ap-password")
        qa.click(".tab[data-tab=scores]")
        appeal = qa.locator("#appeals li", has_text="哦 是商品名的一部分")
        expect(appeal).to_have_count(1, timeout=10_000)
        # the appeal opens the conversation at the message, with the score and its deductions
        appeal.locator("[data-act=context]").click()
        dialog = qa.locator("#conversation")
        expect(dialog.locator("li.focus mark")).to_have_text("哦", timeout=10_000)
        assert in_viewport(qa, dialog.locator("li.focus"))
        expect(qa.locator("#conv-score")).to_contain_text("致命项")
        expect(qa.locator("#conv-score")).to_contain_text("语气词不当")
        expect(qa.locator("#conv-score li[data-section]")).to_have_count(4)
        shot(qa, "qa-appeal-context-1366.png")
        qa.click("#conv-close")
        appeal.locator("button[data-act=accept]").click()
        answer(qa, "同意")
        expect(appeal).to_have_count(0, timeout=10_000)
        expect(qa.locator("#scoreboard tr[data-agent-id=agent-ap] td").nth(2)).to_have_text("100.0", timeout=10_000)
    finally:
        for context in contexts:
            context.close()


def test_qa_awards_a_bonus_edits_the_rules_and_reads_the_audit_log(stack: Stack, page: Page) -> None:
    add_user(stack, {"username": "qa-bonus", "password": "qa-bonus-password", "role": "qa"})
    conv = f"conv-h-{uuid.uuid4().hex[:6]}"
    closed_conversation(stack, conv, "agent-h", "您好，很高兴为您服务")
    sign_in(page, stack, "qa-bonus", "qa-bonus-password")
    scoreboard_row(page, "agent-h")  # scored by now
    page.goto(f"{stack.api_url}/#conversation={conv}")  # a link to the conversation opens it
    score = page.locator("#conv-score")
    expect(score).to_contain_text("本会话得分", timeout=10_000)
    score.locator("button[data-act=bonus]").click()
    ask = page.locator("dialog#ask")
    ask.locator("#ask-points").fill("11")  # past the rubric's 0–10: said beside the field, nothing sent
    ask.locator("#ask-note").fill("耐心细致")
    ask.locator("#ask-ok").click()
    expect(ask.locator("#ask-points-error")).to_have_text("请输入 0–10 之间的整数")
    expect(ask.locator("#ask-points")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(":focus")).to_have_id("ask-points")
    answer(page, "3", "耐心细致，主动告知物流")
    expect(score).to_contain_text("亮点加分 +3.0", timeout=10_000)
    page.click("#conv-close")

    page.click(".tab[data-tab=admin]")
    document = page.locator("#rules-document")
    expect(document).to_have_value(re.compile("rubric"), timeout=10_000)
    good = document.input_value()
    document.fill('{"rules": "not a table"}')
    page.click("#rules-save")
    expect(page.locator("#rules-error")).to_contain_text("规则未通过校验")
    document.fill(good)
    page.click("#rules-save")
    expect(page.locator("#rules-saved")).to_contain_text("已保存", timeout=10_000)
    expect(page.locator("#rules-error")).to_have_text("")
    expect(page.locator("#rules-history tbody tr")).not_to_have_count(0)
    expect(page.locator("#audit-list")).to_contain_text("bonus.award")
    expect(page.locator("#admin-users")).to_be_hidden()  # QA does not manage users
    shot(page, "admin-qa-1366.png")


def test_admin_adds_a_user_and_sorts_the_scoreboard(stack: Stack, page: Page) -> None:
    closed_conversation(stack, f"conv-z-{uuid.uuid4().hex[:6]}", "agent-z", "您好，在的哦")
    open_with_token(page, stack)
    page.click(".tab[data-tab=admin]")
    name = f"lead-{uuid.uuid4().hex[:6]}"
    page.fill("#u-name", name)
    page.fill("#u-password", "a-long-password")
    page.select_option("#u-role", "floor_lead")
    page.fill("#u-team", "team-z")
    page.click("#user-form button[type=submit]")
    expect(page.locator("#users-list tr", has_text=name)).to_contain_text("组长", timeout=10_000)
    page.fill("#u-name", name)
    page.fill("#u-password", "short")
    page.click("#user-form button[type=submit]")  # the browser refuses a password under 8 characters
    expect(page.locator("#users-list tr", has_text=name)).to_have_count(1)

    scoreboard_row(page, "agent-z")
    header = page.locator(".board-table th[data-sort=mean_score]")
    expect(header).to_have_attribute("aria-sort", "descending")
    header.locator("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    first = page.locator("#scoreboard tr").first
    expect(first.locator("td").nth(2)).to_have_text("0.0")  # 哦 is fatal: the lowest mean first


def test_flash_and_sound_follow_the_per_rule_settings(stack: Stack, page: Page) -> None:
    open_with_token(page, stack)
    page.click("#settings-open")
    expect(page.locator("#settings-close")).to_be_visible()
    page.fill("#settings-interval", "0")
    page.press("#settings-interval", "Tab")
    page.uncheck("#settings-rules input[data-rule=conflict][data-kind=flash]")
    page.click("#settings-close")

    quiet, loud, again = (f"conv-q-{uuid.uuid4().hex[:6]}" for _ in range(3))
    send(stack, [chat_event(f"{quiet}-m", quiet, "agent", "爱买不买", agent="agent-q")])  # 与顾客争执: no flash
    expect(page.locator("#alerts tr", has_text=quiet)).to_have_count(1, timeout=20_000)
    expect(page.locator("#announcer")).to_contain_text(quiet)  # still announced
    expect(page.locator("#top")).not_to_have_attribute("data-alarms", re.compile("."))
    send(stack, [chat_event(f"{loud}-m", loud, "agent", "嗯嗯", agent="agent-q")])
    expect(page.locator("#top")).to_have_attribute("data-alarms", "1", timeout=20_000)
    send(stack, [chat_event(f"{again}-m", again, "agent", "嗯嗯", agent="agent-q")])
    expect(page.locator("#top")).to_have_attribute("data-alarms", "2", timeout=20_000)  # interval 0: every one

    page.reload()  # kept in this browser
    page.click("#settings-open")
    expect(page.locator("#settings-rules input[data-rule=conflict][data-kind=flash]")).not_to_be_checked()
    expect(page.locator("#settings-rules input[data-rule=banned_word][data-kind=flash]")).to_be_checked()
    expect(page.locator("#settings-interval")).to_have_value("0")


SHOTS = Path(os.environ.get("ZHIJIAN_DASH_SHOTS", "/tmp/dash-shots"))


def keep(page: Page, name: str) -> None:
    """Screenshots for review, outside the repository."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])
def test_the_in_page_dialog_validates_cancels_with_esc_and_gives_focus_back(
        stack: Stack, browser: Browser, viewport: dict[str, int]) -> None:
    phone = viewport is PHONE
    context = browser.new_context(viewport=viewport, locale="zh-CN", has_touch=phone)
    try:
        page = context.new_page()
        open_with_token(page, stack)
        conv = f"conv-d-{uuid.uuid4().hex[:6]}"
        send(stack, [chat_event(f"{conv}-m", conv, "agent", "爱买不买", agent="agent-d")])
        row = page.locator("#alerts tr", has_text=conv)
        expect(row).to_have_count(1, timeout=20_000)
        note = row.locator("button[data-act=note]")
        note.click()
        dialog = page.locator("dialog#ask")
        expect(dialog).to_be_visible()
        expect(dialog.locator("h2")).to_have_text("添加备注")
        field = dialog.get_by_label("备注内容")  # a real label on the input
        expect(field).to_be_focused()
        # within the screen, buttons big enough for a thumb on a phone
        assert in_viewport(page, dialog)
        for button in ("#ask-ok", "#ask-cancel"):
            box = dialog.locator(button).bounding_box()
            assert box is not None and box["height"] >= (44 if phone else 32)
            assert in_viewport(page, dialog.locator(button))
        dialog.locator("#ask-ok").click()  # empty: refused with a message beside the field
        expect(dialog.locator("#ask-note-error")).to_have_text("请填写此项")
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_attribute("aria-describedby", "ask-note-error")
        keep(page, f"dialog-validation-{viewport['width']}.png")
        field.fill("先看一下")
        expect(dialog.locator("#ask-note-error")).to_have_text("")  # gone once the input is right
        page.keyboard.press("Escape")  # cancelled: nothing sent, focus back on the button
        expect(dialog).to_be_hidden()
        expect(note).to_be_focused()
        expect(row.locator(".notes")).to_have_count(0)
        page.keyboard.press("Enter")  # the focused 备注 button opens it again, empty
        expect(dialog).to_be_visible()
        expect(field).to_have_value("")
        field.fill("已提醒坐席")
        keep(page, f"dialog-note-{viewport['width']}.png")
        page.keyboard.press("Enter")  # Enter confirms (Shift+Enter would be a new line)
        expect(dialog).to_be_hidden()
        expect(row.locator(".notes")).to_contain_text("已提醒坐席", timeout=15_000)
        expect(note).to_be_focused()
        # English mode: the dialog speaks English too
        page.click("#lang")
        note.click()
        expect(dialog.locator("h2")).to_have_text("Add a note")
        expect(dialog.locator("#ask-cancel")).to_have_text("Cancel")
        dialog.locator("#ask-cancel").click()
        expect(dialog).to_be_hidden()
        page.click("#lang")
        # closed without a cancel event (the browser may skip it on a second Esc): cancelled all the same, and
        # the next question opens as usual
        note.click()
        dialog.locator("textarea").fill("不应发送")
        page.evaluate("() => document.getElementById('ask').close()")
        expect(dialog).to_be_hidden()
        expect(note).to_be_focused()
        note.click()
        expect(dialog).to_be_visible()
        expect(dialog.locator("textarea")).to_have_value("")
        dialog.locator("#ask-cancel").click()
        expect(row.locator(".notes li")).to_have_count(1)
        # a question asked again at once (a fast Esc then Enter): the close event of the one before, which the
        # browser fires in a later task, does not close the new one
        page.evaluate("""async () => {
            const { ask } = await import('./ask.js');
            const first = ask({ title: 'a', fields: [{ name: 'x', label: 'x' }] });
            document.getElementById('ask-cancel').click();
            window.__second = ask({ title: 'b', fields: [{ name: 'y', label: 'y' }] });
            window.__first = await first;
        }""")
        expect(dialog).to_be_visible()
        expect(dialog.locator("h2")).to_have_text("b")
        assert page.evaluate("() => window.__first") is None
        dialog.locator("#ask-y").fill("ok")
        dialog.locator("#ask-ok").click()
        assert page.evaluate("() => window.__second") == {"y": "ok"}
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])
def test_search_finds_a_conversation_by_order_number_keyword_and_id_within_the_scope(
        stack: Stack, browser: Browser, viewport: dict[str, int]) -> None:
    width = viewport["width"]
    add_user(stack, {"username": f"lead-s{width}", "password": "lead-s-password", "role": "floor_lead",
                     "team_id": f"team-s{width}", "display_name": "搜索组长"})
    tag = uuid.uuid4().hex[:6].upper()
    mine, other = f"conv-s-{tag.lower()}", f"conv-o-{tag.lower()}"
    order = f"DD{tag}0017"
    now = int(time.time() * 1000) - 30_000
    send(stack, [chat_event(f"{mine}-c", mine, "customer", f"订单 {order} 还没发货，退款吗", agent=None,
                            team=f"team-s{width}", ts_ms=now),
                 chat_event(f"{mine}-a", mine, "agent", "您好，马上为您查询", agent="agent-s1", team=f"team-s{width}",
                            ts_ms=now + 2000),
                 chat_event(f"{other}-c", other, "customer", f"我的订单 {order}9 也没到", agent=None,
                            team="team-elsewhere", ts_ms=now + 4000)])
    context = browser.new_context(viewport=viewport, locale="zh-CN", has_touch=viewport is PHONE)
    try:
        page = context.new_page()
        sign_in(page, stack, f"lead-s{width}", "lead-s-password")
        box = page.get_by_role("searchbox", name="搜索会话")
        expect(box).to_be_visible()
        assert in_viewport(page, box)
        results = page.locator("#search-list li")
        for _attempt in range(10):  # the transcript reaches SQL in the worker's next batch
            box.fill(order)
            box.press("Enter")
            expect(page.locator("#search-summary")).not_to_have_text("加载中…")
            if results.count():
                break
            page.wait_for_timeout(1000)
        # the floor lead finds their team's conversation; the other team's, with the same order prefix, stays out
        expect(results).to_have_count(1)
        hit = results.first
        expect(hit).to_have_attribute("data-conversation-id", mine)
        expect(hit.locator("mark")).to_have_text(order)
        expect(page.locator("#search-summary")).to_have_text("找到 1 个会话")
        keep(page, f"search-results-{width}.png")
        hit.locator("a").click()  # opens the conversation at the matching message
        dialog = page.locator("#conversation")
        expect(dialog.locator("li.focus")).to_contain_text(order, timeout=10_000)
        keep(page, f"search-conversation-{width}.png")
        page.click("#conv-close")

        box.fill("没有这样的内容" + tag)
        box.press("Enter")
        expect(page.locator("#search-summary")).to_have_text("没有找到匹配的会话")
        box.fill(mine)  # by its id
        box.press("Enter")
        expect(results).to_have_count(1)
        expect(results.first).to_contain_text("会话号匹配")
        box.press("Escape")
        expect(page.locator("#search-results")).to_be_hidden()
    finally:
        context.close()
