-- 004: the deployment identity of every record, and the deployments of each function (issue 17).
--
-- * invocations.function_version (Lambda's: "$LATEST", "12") and invocations.code_id (the SDK's
--   fingerprint of the code and its dependencies) are optional payload fields (DESIGN.md).
-- * A function's deployment is its code_id, else 'version:' || function_version (most functions
--   run $LATEST, whose version never changes: only code_id tells two of its deployments apart).
--   Records with neither (older SDKs, other clients) belong to no deployment.
-- * function_deployments lists each function's deployments with their first and last time seen,
--   so that listing them never reads invocations. The writer keeps it in the same statement as
--   the invocations it stores (writer.c): from complete records only (the early copy of a
--   cold-start record has no code_id yet), and only when the stored row would change by more
--   than a minute, so that concurrent writers of one function rarely wait on its row lock.
-- * idx_invocations_function_deployment_cold serves the per-deployment figures (cold starts,
--   init percentiles, per-package times) and the comparisons: cold starts are a few percent of
--   invocations, the only rows those read.

ALTER TABLE invocations ADD COLUMN function_version VARCHAR(64), ADD COLUMN code_id VARCHAR(64);

CREATE TABLE function_deployments (
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    project_id UUID NOT NULL,
    deployment VARCHAR(80) NOT NULL,          -- code_id, else 'version:' || function_version
    code_id VARCHAR(64),
    function_version VARCHAR(64),             -- the latest seen with this deployment
    first_seen_at TIMESTAMP WITH TIME ZONE NOT NULL,
    last_seen_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (function_id, deployment)
);
CREATE INDEX idx_function_deployments_first_seen ON function_deployments(function_id, first_seen_at DESC);

CREATE INDEX idx_invocations_function_deployment_cold
    ON invocations (function_id, (coalesce(code_id, 'version:' || function_version)), "timestamp" DESC)
    WHERE cold_start;

-- Existing rows that already carry an identity (none before this migration; kept for replays).
INSERT INTO function_deployments (function_id, project_id, deployment, code_id, function_version, first_seen_at, last_seen_at)
SELECT function_id, project_id, coalesce(code_id, 'version:' || function_version), max(code_id), max(function_version),
       min("timestamp"), max("timestamp")
FROM invocations WHERE coalesce(code_id, function_version) IS NOT NULL AND execution_duration_ms IS NOT NULL
GROUP BY 1, 2, 3;
