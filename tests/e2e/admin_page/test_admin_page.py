"""An analyst in a real browser: sign in, filter, open a user, lock through the confirmation
dialog, and find the lock in the audit view. Screenshots of each page are saved."""

from __future__ import annotations

from pathlib import Path

from fraudwatch.intervention.auth import create_token
from live_service import running_service
from scored_fixture import write_scored


def test_analyst_locks_an_account_from_the_admin_page(
    browser, tmp_path: Path, output_dir: Path
) -> None:
    with running_service(write_scored(tmp_path / "scored"), tmp_path / "state.sqlite3") as (
        base,
        store,
    ):
        token, _ = create_token(store, "analyst")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

        page.goto(f"{base}/admin")
        assert page.url.endswith("/admin/login")
        page.screenshot(path=output_dir / "01-sign-in.png", full_page=True)
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/admin")
        assert page.locator("#anomalies tbody tr").count() == 40
        assert "40 matching users" in page.inner_text(".count")
        page.screenshot(path=output_dir / "02-anomalies.png", full_page=True)

        page.select_option("select[name=scenario]", "account_takeover")
        page.fill("input[name=score_min]", "0.9")
        page.click("#filters button[type=submit]")
        page.wait_for_load_state()
        assert "3 matching users" in page.inner_text(".count")
        users = page.locator("#anomalies tbody tr td:nth-child(2)").all_inner_texts()
        assert users == ["1", "2", "3"]
        page.screenshot(path=output_dir / "03-anomalies-filtered.png", full_page=True)

        page.click("#anomalies a:text-is('2')")
        page.wait_for_url(f"{base}/admin/users/2")
        assert "amount_max far above persona" in page.inner_text("#reasons")
        assert page.locator("svg.chart polyline").count() == 1
        assert "open" in page.inner_text("#account-state")
        page.screenshot(path=output_dir / "04-user.png", full_page=True)

        page.click("button[data-action=lock]")
        dialog = page.locator("dialog#confirm")
        assert dialog.is_visible()
        assert page.inner_text("#confirm-title") == "Lock account?"
        page.fill("#reason", "takeover pattern confirmed by analyst")
        page.screenshot(path=output_dir / "05-confirm-dialog.png")
        page.click("#confirm-submit")
        page.wait_for_url(f"{base}/admin/users/2?done=lock")
        assert "locked" in page.inner_text("#account-state")
        assert "takeover pattern confirmed by analyst" in page.inner_text("#history")
        page.screenshot(path=output_dir / "06-user-locked.png", full_page=True)

        page.click("nav a:text-is('Audit')")
        page.wait_for_url(f"{base}/admin/audit")
        rows = page.locator("#audit tbody tr").all_inner_texts()
        # newest first: the view of the user page after the lock, then the lock
        assert "view" in rows[0] and "account_view 2" in rows[0]
        assert "lock" in rows[1] and "account 2" in rows[1]
        assert "takeover pattern confirmed by analyst" in rows[1]
        page.screenshot(path=output_dir / "07-audit.png", full_page=True)

        assert store.get_state("account", "2") == {"locked": True}
        assert not console_errors, console_errors  # e.g. a CSP violation would show here
        for name in ("01-sign-in", "02-anomalies", "04-user", "05-confirm-dialog", "07-audit"):
            assert (output_dir / f"{name}.png").stat().st_size > 1000
