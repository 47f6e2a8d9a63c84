"""Tables of the review service, created beside the journal's in the same database.

The journal holds the facts about parcels (including every ``OperatorVerdict``); these tables
hold accounts, sessions, an index of verdicts for statistics, when operators first saw a
case (for response times) and threat image projection. All writes are inserts or
single-row updates of settings; verdict rows are never updated or deleted.
"""

from __future__ import annotations

from smartscreen.journal import Database

TABLES = (
    """CREATE TABLE IF NOT EXISTS review_accounts (
        username TEXT PRIMARY KEY,
        centre_id TEXT NOT NULL,
        role TEXT NOT NULL,
        display_name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        disabled INTEGER NOT NULL,
        created_at_ns BIGINT NOT NULL,
        updated_at_ns BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS review_sessions (
        token_sha256 TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        created_at_ns BIGINT NOT NULL,
        expires_at_ns BIGINT NOT NULL,
        revoked INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS review_verdicts (
        seq BIGINT PRIMARY KEY,
        parcel_id TEXT NOT NULL,
        centre_id TEXT NOT NULL,
        line_id TEXT NOT NULL,
        operator_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        at_ns BIGINT NOT NULL,
        n_boxes INTEGER NOT NULL,
        supersedes_seq BIGINT,
        response_ms DOUBLE PRECISION
    )""",
    "CREATE INDEX IF NOT EXISTS review_verdicts_parcel ON review_verdicts (parcel_id)",
    "CREATE INDEX IF NOT EXISTS review_verdicts_operator ON review_verdicts (centre_id, operator_id)",
    """CREATE TABLE IF NOT EXISTS review_views (
        username TEXT NOT NULL,
        case_id TEXT NOT NULL,
        first_shown_ns BIGINT NOT NULL,
        PRIMARY KEY (username, case_id)
    )""",
    """CREATE TABLE IF NOT EXISTS review_tip_settings (
        username TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL,
        probability DOUBLE PRECISION NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at_ns BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS review_tip_events (
        case_id TEXT PRIMARY KEY,
        operator_id TEXT NOT NULL,
        centre_id TEXT NOT NULL,
        line_id TEXT NOT NULL,
        source_parcel_id TEXT NOT NULL,
        threat_class TEXT NOT NULL,
        x1 DOUBLE PRECISION NOT NULL,
        y1 DOUBLE PRECISION NOT NULL,
        x2 DOUBLE PRECISION NOT NULL,
        y2 DOUBLE PRECISION NOT NULL,
        raw_sha256 TEXT NOT NULL,
        projected_at_ns BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        verdict_kind TEXT,
        decided_at_ns BIGINT,
        response_ms DOUBLE PRECISION,
        iou DOUBLE PRECISION
    )""",
    "CREATE INDEX IF NOT EXISTS review_tip_events_operator ON review_tip_events (operator_id, outcome)",
)


def create_review_tables(db: Database) -> None:
    """Idempotent: creates the review service's tables if they are missing."""
    db.script(TABLES)
