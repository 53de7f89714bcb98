-- 0004: the credential change feed (WatchCredentials). Every change to a
-- credential's version, lease holder or status, and every insert and delete,
-- notifies channel authgate_credentials with the credential's id. PostgreSQL
-- delivers notifications only on commit, in commit order, so a rolled-back
-- write notifies nobody. Lease renewals and last-used touches change none of
-- those columns: the WHEN clause keeps them out without calling the function.
CREATE FUNCTION credential_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('authgate_credentials', OLD.id);
    ELSE
        PERFORM pg_notify('authgate_credentials', NEW.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER credential_changes_insert_delete AFTER INSERT OR DELETE ON credentials
    FOR EACH ROW EXECUTE FUNCTION credential_changes_notify();

CREATE TRIGGER credential_changes_update AFTER UPDATE ON credentials
    FOR EACH ROW
    WHEN (OLD.version IS DISTINCT FROM NEW.version
        OR OLD.lease_holder IS DISTINCT FROM NEW.lease_holder
        OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION credential_changes_notify();
