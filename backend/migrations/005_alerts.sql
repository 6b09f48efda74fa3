-- 005: alert rules, their state per function, and the webhook outbox (issue 17, docs/alerts.md).
--
-- * alert_rules: one rule of a project, for one function or (function_id NULL) for each of the
--   project's functions. metric is one of init_p95_ms, cold_start_rate (percent), regression
--   (percent of the median init, the newest deployment against the one before) and
--   init_cost_monthly_usd. secret signs every delivery (HMAC-SHA256): the server must be able to
--   compute it, so it is stored as it is (hex), never returned after creation and never logged
--   (docs/security.md says so and why).
-- * alert_states: whether a rule fires for a function, since when, with the last figure. A
--   notification is queued only when the state changes (ok -> firing, firing -> ok): never
--   again while firing.
-- * alert_outbox: one row per notification, written in the same transaction as the state change
--   that caused it, so that a notification is never lost between the two. Its id is the delivery
--   id (X-Coldstart-Delivery); body is the exact bytes signed and sent, so a retry (also after a
--   restart) is the same request. A sender takes a due row FOR UPDATE SKIP LOCKED and holds the
--   lock while it posts: a second replica never sends it at the same time, and a sender that dies
--   mid-delivery releases it with its connection, so the row is sent again (at least once).

CREATE TABLE alert_rules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    function_id UUID REFERENCES functions(id) ON DELETE CASCADE, -- NULL: every function of the project
    name VARCHAR(255) NOT NULL,
    metric VARCHAR(32) NOT NULL
        CHECK (metric IN ('init_p95_ms', 'cold_start_rate', 'regression', 'init_cost_monthly_usd')),
    threshold DOUBLE PRECISION NOT NULL CHECK (threshold >= 0),
    window_minutes INT NOT NULL CHECK (window_minutes BETWEEN 1 AND 43200),
    min_samples INT NOT NULL DEFAULT 1 CHECK (min_samples >= 1),
    webhook_url TEXT NOT NULL,
    format VARCHAR(10) NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack')),
    secret VARCHAR(80) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);
CREATE INDEX idx_alert_rules_project ON alert_rules(project_id, created_at);

CREATE TABLE alert_states (
    rule_id UUID NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    state VARCHAR(10) NOT NULL CHECK (state IN ('firing', 'ok')),
    subject VARCHAR(80),                      -- regression: the head deployment it fired for
    since TIMESTAMP WITH TIME ZONE NOT NULL,
    value DOUBLE PRECISION,
    evaluated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (rule_id, function_id)
);

CREATE TABLE alert_outbox (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    rule_id UUID NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    function_id UUID,
    event VARCHAR(10) NOT NULL CHECK (event IN ('firing', 'resolved')),
    body TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    last_attempt_at TIMESTAMP WITH TIME ZONE,
    last_error TEXT,                          -- of the last attempt; NULL once delivered
    delivered_at TIMESTAMP WITH TIME ZONE,
    failed_at TIMESTAMP WITH TIME ZONE        -- gave up after ALERT_MAX_ATTEMPTS
);
CREATE INDEX idx_alert_outbox_due ON alert_outbox(next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX idx_alert_outbox_rule ON alert_outbox(rule_id, created_at DESC);
