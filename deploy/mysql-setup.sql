-- One-time MySQL/MariaDB setup for production. feedgate creates its tables
-- itself (`feedgate migrate`, also run on every start).
CREATE DATABASE IF NOT EXISTS feedgate CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'feedgate'@'%' IDENTIFIED BY 'CHANGE_ME';
GRANT ALL PRIVILEGES ON feedgate.* TO 'feedgate'@'%';
-- With read replicas: the same user on each replica (users replicate from the
-- primary), which also reads its replication status for the health checks.
-- On MariaDB 10.5+ the privilege is SLAVE MONITOR; on older ones and MySQL,
-- REPLICATION CLIENT.
GRANT SLAVE MONITOR ON *.* TO 'feedgate'@'%';
