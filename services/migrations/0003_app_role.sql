-- The application's own database user on RDS: it logs in with IAM tokens only (rds_iam)
-- and may read and write rows, not change the schema. Outside RDS (no rds_iam role, e.g.
-- a developer's PostgreSQL) this does nothing. The name matches APP_USER in
-- components/database.py, which grants the pods' IAM roles `rds-db:connect` as it.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam') THEN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'eduscale_app') THEN
            CREATE ROLE eduscale_app LOGIN;
        END IF;
        GRANT rds_iam TO eduscale_app;
        GRANT USAGE ON SCHEMA public TO eduscale_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO eduscale_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO eduscale_app;
    END IF;
END
$$;
