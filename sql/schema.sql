-- The voting schema: the one source of truth, embedded in voting-core and applied by
-- `voting db init`. Every statement is idempotent (re-running upgrades nothing away).
-- Statements are separated by a line holding only ';' so that the loader never has
-- to parse SQL.

-- The election: exactly one row (id = 1) holding the lifecycle state.
CREATE TABLE IF NOT EXISTS election (
    id        TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    state     ENUM('setup', 'open', 'closed') NOT NULL DEFAULT 'setup',
    opened_at DATETIME(6) NULL,
    closed_at DATETIME(6) NULL,
    CONSTRAINT election_single_row CHECK (id = 1)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
;
INSERT IGNORE INTO election (id) VALUES (1)
;
-- The electoral roll. `voted` records *that* a voter voted, never which ballot is
-- theirs, and no time of voting is kept (it could be matched against ballot order).
CREATE TABLE IF NOT EXISTS voters (
    srn             VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    first_name      VARCHAR(100) NOT NULL,
    last_name       VARCHAR(100) NOT NULL,
    dob             DATE NULL,
    credential_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    voted           BOOLEAN NOT NULL DEFAULT FALSE,
    KEY voters_voted (voted)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
;
CREATE TABLE IF NOT EXISTS candidates (
    srn         VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    name        VARCHAR(200) NOT NULL,
    affiliation VARCHAR(200) NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
;
-- The ballot box: no voter identity, no timestamp. The tally is derived from here.
-- `seq` and `chain_hash` are set by the sealer shortly after the ballot commits:
-- ballot `seq` is chained to ballot `seq - 1` (see voting-core's integrity module).
CREATE TABLE IF NOT EXISTS ballots (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    candidate_srn VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    receipt_hash  BINARY(32) NOT NULL,
    seq           BIGINT UNSIGNED NULL,
    chain_hash    BINARY(32) NULL,
    UNIQUE KEY ballots_receipt (receipt_hash),
    UNIQUE KEY ballots_seq (seq),
    KEY ballots_candidate (candidate_srn),
    CONSTRAINT ballots_candidate_fk FOREIGN KEY (candidate_srn) REFERENCES candidates (srn)
) ENGINE = InnoDB
;
CREATE TABLE IF NOT EXISTS admins (
    name          VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at    DATETIME(6) NOT NULL
) ENGINE = InnoDB
;
-- Failed sign-ins per account ('admin:NAME' or 'voter:SRN'), shared by every server
-- instance. Unknown accounts get rows too, so a lockout reveals nothing.
CREATE TABLE IF NOT EXISTS login_failures (
    account      VARCHAR(80) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    failures     INT UNSIGNED NOT NULL,
    locked_until DATETIME(6) NULL,
    last_failure DATETIME(6) NOT NULL
) ENGINE = InnoDB
;
-- Every state change and admin action. Casting a vote is deliberately not logged.
-- Lines are chained like ballots (`seq`, `chain_hash`), as they are written.
CREATE TABLE IF NOT EXISTS audit_log (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at         DATETIME(6) NOT NULL,
    actor      VARCHAR(100) NOT NULL,
    action     VARCHAR(64) NOT NULL,
    detail     VARCHAR(1000) NOT NULL,
    seq        BIGINT UNSIGNED NOT NULL,
    chain_hash BINARY(32) NOT NULL,
    UNIQUE KEY audit_seq (seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
;
-- The head of each hash chain ('ballots', 'audit'): how many links, and the last
-- link's hash. Its row lock orders the sealers of all server instances.
CREATE TABLE IF NOT EXISTS chain_heads (
    chain  VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    length BIGINT UNSIGNED NOT NULL,
    head   BINARY(32) NOT NULL
) ENGINE = InnoDB
;
INSERT IGNORE INTO chain_heads (chain, length, head) VALUES
    ('ballots', 0, REPEAT(CHAR(0), 32)), ('audit', 0, REPEAT(CHAR(0), 32))
;
CREATE TABLE IF NOT EXISTS schema_meta (
    id      TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    version INT UNSIGNED NOT NULL
) ENGINE = InnoDB
;
INSERT INTO schema_meta (id, version) VALUES (1, 2) ON DUPLICATE KEY UPDATE version = GREATEST(version, 2)
