-- The schema the API process of commit 4379c51 created (Store.create_schema with every table module imported), frozen.
CREATE TABLE alert_actions (
	alert_id VARCHAR(64) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	claimed_by VARCHAR(64), 
	claimed_at VARCHAR(40), 
	resolved_by VARCHAR(64), 
	resolved_at VARCHAR(40), 
	notes TEXT NOT NULL, 
	PRIMARY KEY (alert_id)
);
CREATE TABLE alert_sequence (
	name VARCHAR(16) NOT NULL, 
	value BIGINT NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE alerts (
	alert_id VARCHAR(64) NOT NULL, 
	rule VARCHAR(64) NOT NULL, 
	severity VARCHAR(16) NOT NULL, 
	fatal BOOLEAN NOT NULL, 
	conversation_id VARCHAR(128) NOT NULL, 
	shop_id VARCHAR(128) NOT NULL, 
	agent_id VARCHAR(128), 
	team_id VARCHAR(128), 
	message_id VARCHAR(128) NOT NULL, 
	ts_ms BIGINT NOT NULL, 
	detected_at VARCHAR(40) NOT NULL, 
	payload TEXT NOT NULL, 
	revision INTEGER DEFAULT '0' NOT NULL, 
	seq BIGINT DEFAULT '0' NOT NULL, 
	PRIMARY KEY (alert_id)
);
CREATE INDEX ix_alerts_agent_ts ON alerts (agent_id, ts_ms);
CREATE INDEX ix_alerts_seq ON alerts (seq);
CREATE INDEX ix_alerts_ts ON alerts (ts_ms);
CREATE TABLE appeal_terms (
	appeal_id VARCHAR(36) NOT NULL, 
	evidence TEXT NOT NULL, 
	notice_at VARCHAR(40), 
	window_ends VARCHAR(40), 
	decide_by VARCHAR(40) NOT NULL, 
	escalated_at VARCHAR(40), 
	PRIMARY KEY (appeal_id)
);
CREATE TABLE appeals (
	appeal_id VARCHAR(36) NOT NULL, 
	finding_id VARCHAR(32) NOT NULL, 
	conversation_id VARCHAR(128) NOT NULL, 
	agent_id VARCHAR(128), 
	day VARCHAR(10) NOT NULL, 
	reason TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	opened_at VARCHAR(40) NOT NULL, 
	decided_at VARCHAR(40), 
	reviewer VARCHAR(128), 
	note TEXT, 
	PRIMARY KEY (appeal_id)
);
CREATE INDEX ix_appeals_finding ON appeals (finding_id);
CREATE TABLE audit_log (
	id SERIAL NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	action VARCHAR(64) NOT NULL, 
	subject VARCHAR(128) NOT NULL, 
	detail TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE bonuses (
	conversation_id VARCHAR(128) NOT NULL, 
	points INTEGER NOT NULL, 
	note TEXT NOT NULL, 
	reviewer VARCHAR(128) NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (conversation_id)
);
CREATE TABLE conversation_scores (
	conversation_id VARCHAR(128) NOT NULL, 
	shop_id VARCHAR(128) NOT NULL, 
	agent_id VARCHAR(128), 
	team_id VARCHAR(128), 
	day VARCHAR(10) NOT NULL, 
	shift VARCHAR(32), 
	opened_ms BIGINT, 
	closed_ms BIGINT, 
	duration_s FLOAT, 
	score FLOAT NOT NULL, 
	max_score INTEGER NOT NULL, 
	fatal BOOLEAN NOT NULL, 
	first_response_s FLOAT, 
	avg_response_s FLOAT, 
	turns INTEGER NOT NULL, 
	answered_turns INTEGER NOT NULL, 
	politeness_rate FLOAT, 
	agent_messages INTEGER NOT NULL, 
	customer_messages INTEGER NOT NULL, 
	labels TEXT NOT NULL, 
	breakdown TEXT NOT NULL, 
	version BIGINT NOT NULL, 
	summary TEXT NOT NULL, 
	PRIMARY KEY (conversation_id)
);
CREATE INDEX ix_scores_day_agent ON conversation_scores (day, agent_id);
CREATE INDEX ix_scores_day_team ON conversation_scores (day, team_id);
CREATE TABLE conversations (
	conversation_id VARCHAR(128) NOT NULL, 
	shop_id VARCHAR(128) NOT NULL, 
	team_id VARCHAR(128), 
	agent_id VARCHAR(128), 
	status VARCHAR(16) NOT NULL, 
	opened_ms BIGINT, 
	closed_ms BIGINT, 
	waiting_since_ms BIGINT, 
	version BIGINT NOT NULL, 
	final BOOLEAN NOT NULL, 
	payload TEXT NOT NULL, 
	PRIMARY KEY (conversation_id)
);
CREATE INDEX ix_conversations_agent ON conversations (agent_id, opened_ms);
CREATE INDEX ix_conversations_status ON conversations (status, waiting_since_ms);
CREATE INDEX ix_conversations_team ON conversations (team_id, opened_ms);
CREATE TABLE findings (
	finding_id VARCHAR(32) NOT NULL, 
	conversation_id VARCHAR(128) NOT NULL, 
	agent_id VARCHAR(128), 
	team_id VARCHAR(128), 
	day VARCHAR(10) NOT NULL, 
	label VARCHAR(32) NOT NULL, 
	message_id VARCHAR(128), 
	start INTEGER NOT NULL, 
	"end" INTEGER NOT NULL, 
	ts_ms BIGINT, 
	matched TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	PRIMARY KEY (finding_id)
);
CREATE INDEX ix_findings_agent_day ON findings (agent_id, day);
CREATE INDEX ix_findings_conversation ON findings (conversation_id);
CREATE TABLE ingest_sources (
	name VARCHAR(64) NOT NULL, 
	token_sha256 VARCHAR(64) NOT NULL, 
	mapping TEXT, 
	disabled BOOLEAN NOT NULL, 
	created_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (name), 
	UNIQUE (token_sha256)
);
CREATE TABLE messages (
	conversation_id VARCHAR(128) NOT NULL, 
	message_id VARCHAR(128) NOT NULL, 
	ts_ms BIGINT NOT NULL, 
	seq INTEGER NOT NULL, 
	sender VARCHAR(16) NOT NULL, 
	agent_id VARCHAR(128), 
	text TEXT NOT NULL, 
	late BOOLEAN NOT NULL, 
	ruleset VARCHAR(64) NOT NULL, 
	marks TEXT NOT NULL, 
	PRIMARY KEY (conversation_id, message_id)
);
CREATE INDEX ix_messages_ts ON messages (conversation_id, ts_ms);
CREATE TABLE reports_published (
	day VARCHAR(10) NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (day)
);
CREATE TABLE review_marks (
	finding_id VARCHAR(32) NOT NULL, 
	conversation_id VARCHAR(128) NOT NULL, 
	origin VARCHAR(16) NOT NULL, 
	decision VARCHAR(16) NOT NULL, 
	note TEXT NOT NULL, 
	reviewer VARCHAR(128) NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (finding_id)
);
CREATE INDEX ix_review_marks_conversation ON review_marks (conversation_id);
CREATE TABLE review_samples (
	day VARCHAR(10) NOT NULL, 
	conversation_id VARCHAR(128) NOT NULL, 
	agent_id VARCHAR(128), 
	reasons TEXT NOT NULL, 
	PRIMARY KEY (day, conversation_id)
);
CREATE TABLE reviews (
	conversation_id VARCHAR(128) NOT NULL, 
	day VARCHAR(10) NOT NULL, 
	agent_id VARCHAR(128), 
	status VARCHAR(16) NOT NULL, 
	human TEXT NOT NULL, 
	reviewer VARCHAR(128), 
	signed_off_at VARCHAR(40), 
	note TEXT NOT NULL, 
	PRIMARY KEY (conversation_id)
);
CREATE INDEX ix_reviews_day ON reviews (day);
CREATE TABLE rule_sets (
	revision BIGINT NOT NULL, 
	version VARCHAR(64) NOT NULL, 
	digest VARCHAR(32) NOT NULL, 
	author VARCHAR(128) NOT NULL, 
	created_at VARCHAR(40) NOT NULL, 
	document TEXT NOT NULL, 
	PRIMARY KEY (revision)
);
CREATE TABLE sessions (
	token_sha256 VARCHAR(64) NOT NULL, 
	username VARCHAR(64) NOT NULL, 
	expires_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (token_sha256)
);
CREATE TABLE users (
	username VARCHAR(64) NOT NULL, 
	password_hash VARCHAR(256) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	team_id VARCHAR(128), 
	agent_id VARCHAR(128), 
	display_name VARCHAR(128), 
	disabled BOOLEAN NOT NULL, 
	created_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (username)
);
INSERT INTO alert_sequence (name, value) VALUES ('alerts', 0);
