DROP TABLE event_log;
DROP TABLE gate;
DROP TABLE task;
DROP TABLE project;
