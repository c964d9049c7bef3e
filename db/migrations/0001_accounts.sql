-- 0001 — organizations, people, credentials, customers, metrics and plans.
--
-- Every tenant table carries org_id (bigint, FK to organizations) and every
-- repository query filters on it.  Users with role 'admin' are platform staff
-- and have no organization.  Secrets (session tokens, API keys) are stored only
-- as SHA-256 hex; passwords as argon2id strings.  Money and quantities are
-- numeric, never floating point.

CREATE FUNCTION ml_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TABLE organizations (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  invoice_prefix text NOT NULL DEFAULT 'INV' CHECK (invoice_prefix ~ '^[A-Z0-9]{1,12}$'),
  currency       char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  tax_rate       numeric(9,6) NOT NULL DEFAULT 0 CHECK (tax_rate >= 0 AND tax_rate <= 1),
  template       jsonb,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id        bigint REFERENCES organizations(id) ON DELETE CASCADE,
  email         text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  password_hash text NOT NULL,
  role          text NOT NULL CHECK (role IN ('admin', 'owner', 'finance', 'approver', 'viewer')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  -- platform admins have no organization; everyone else has exactly one
  CHECK ((role = 'admin') = (org_id IS NULL))
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_org_idx ON users (org_id);

CREATE TABLE sessions (
  token_hash   char(64) PRIMARY KEY,
  user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  expires_at   timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  user_agent   text,
  address      text
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expiry_idx ON sessions (expires_at);

CREATE TABLE api_keys (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id       bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  key_hash     char(64) NOT NULL UNIQUE,
  key_prefix   text NOT NULL,
  scopes       text[] NOT NULL CHECK (scopes <@ ARRAY['read', 'usage:write']::text[]
                                      AND cardinality(scopes) > 0),
  created_by   uuid REFERENCES users(id) ON DELETE SET NULL,
  last_used_at timestamptz,
  revoked_at   timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_org_idx ON api_keys (org_id);

CREATE TABLE plans (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id     bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  code       text NOT NULL CHECK (code ~ '^[A-Za-z0-9_.:-]{1,64}$'),
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  currency   char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  base_fee   numeric(30,12) NOT NULL DEFAULT 0 CHECK (base_fee >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, code),
  UNIQUE (org_id, id)
);

CREATE TABLE customers (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id           bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  external_id      text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 128),
  name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  email            text,
  currency         char(3) CHECK (currency ~ '^[A-Z]{3}$'),
  plan_id          bigint,
  billing_address  jsonb,
  require_approval boolean NOT NULL DEFAULT false,
  tax_rate         numeric(9,6) CHECK (tax_rate >= 0 AND tax_rate <= 1),
  monthly_limits   jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, external_id),
  UNIQUE (org_id, id),
  -- a customer's plan must belong to the customer's organization
  FOREIGN KEY (org_id, plan_id) REFERENCES plans (org_id, id)
);
CREATE INDEX customers_org_name_idx ON customers (org_id, lower(name));

CREATE TABLE metrics (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id          bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  code            text NOT NULL CHECK (code ~ '^[A-Za-z0-9_.:-]{1,64}$'),
  name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  aggregation     text NOT NULL CHECK (aggregation IN ('sum', 'count', 'max', 'unique_count')),
  unit            text,
  unique_property text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, code),
  UNIQUE (org_id, id),
  CHECK ((aggregation = 'unique_count') = (unique_property IS NOT NULL))
);

CREATE TABLE plan_charges (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id         bigint NOT NULL,
  plan_id        bigint NOT NULL,
  metric_id      bigint NOT NULL,
  position       int NOT NULL CHECK (position >= 0),
  model          text NOT NULL CHECK (model IN ('per_unit', 'graduated', 'volume', 'package')),
  unit_price     numeric(30,12) CHECK (unit_price >= 0),
  included_units numeric(38,12) NOT NULL DEFAULT 0 CHECK (included_units >= 0),
  package_size   numeric(38,12) CHECK (package_size > 0),
  minimum        numeric(30,12) CHECK (minimum >= 0),
  -- [{"up_to": "1000" | null, "unit_price": "0.01", "flat_fee": "0"}], ascending, last up_to null
  tiers          jsonb,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (org_id, plan_id) REFERENCES plans (org_id, id) ON DELETE CASCADE,
  FOREIGN KEY (org_id, metric_id) REFERENCES metrics (org_id, id),
  UNIQUE (plan_id, position),
  CHECK ((model IN ('graduated', 'volume')) = (tiers IS NOT NULL)),
  CHECK ((model IN ('per_unit', 'package')) = (unit_price IS NOT NULL)),
  CHECK ((model = 'package') = (package_size IS NOT NULL))
);

CREATE TRIGGER organizations_touch BEFORE UPDATE ON organizations FOR EACH ROW EXECUTE FUNCTION ml_touch_updated_at();
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION ml_touch_updated_at();
CREATE TRIGGER sessions_touch BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION ml_touch_updated_at();
CREATE TRIGGER api_keys_touch BEFORE UPDATE ON api_keys FOR EACH ROW EXECUTE FUNCTION ml_touch_updated_at();
CREATE TRIGGER plans_touch BEFORE UPDATE ON plans FOR EACH ROW EXECUTE FUNCTION ml_touch_updated_at();
CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION ml_touch_updated_at();
CREATE TRIGGER metrics_touch BEFORE UPDATE ON metrics FOR EACH ROW EXECUTE FUNCTION ml_touch_updated_at();
CREATE TRIGGER plan_charges_touch BEFORE UPDATE ON plan_charges FOR EACH ROW EXECUTE FUNCTION ml_touch_updated_at();
