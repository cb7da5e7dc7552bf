"""The stream-json transcripts in tests/fixtures/transcripts/ (written in the real CLI's format) and
what they hold, shared by the parser's and the outcome policy's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
SESSION = "3f6c2a1e-8d4b-4e2f-9a57-1c0b7e9d4a21"
# Thursday 2 April 2026, 19:00 UTC: noon in Los Angeles (PDT), 00:30 on the 3rd in Calcutta.
NOW = datetime(2026, 4, 2, 19, 0, tzinfo=UTC)

# Each limit transcript and the reset it names, relative to NOW.
LIMIT_RESETS = [
    # 4pm PDT on the same day: it is noon there.
    ("limit_hit_your_limit.jsonl", datetime(2026, 4, 2, 23, 0, tzinfo=UTC)),
    # 11:30 IST on the 3rd: it is 00:30 on the 3rd there.
    ("limit_reached.jsonl", datetime(2026, 4, 3, 6, 0, tzinfo=UTC)),
    # 7am CDT on 10 April.
    ("limit_weekly.jsonl", datetime(2026, 4, 10, 12, 0, tzinfo=UTC)),
    ("limit_epoch.jsonl", datetime.fromtimestamp(1775246400, UTC)),
    # Printed as plain text, no events at all: 1pm WEST on the 3rd (it is 8pm in Lisbon).
    ("limit_plain_text.jsonl", datetime(2026, 4, 3, 12, 0, tzinfo=UTC)),
    # allowed_warning first (no limit yet), then denied: the event's resetsAt.
    ("rate_limit_warning_then_denied.jsonl", datetime.fromtimestamp(1775206800, UTC)),
]
