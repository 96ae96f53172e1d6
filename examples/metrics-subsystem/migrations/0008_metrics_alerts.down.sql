DROP TABLE IF EXISTS metrics_alert;
