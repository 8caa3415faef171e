-- One-time MySQL/MariaDB setup for production. feedgate creates its tables
-- itself (`feedgate migrate`, also run on every start).
CREATE DATABASE IF NOT EXISTS feedgate CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'feedgate'@'%' IDENTIFIED BY 'CHANGE_ME';
GRANT ALL PRIVILEGES ON feedgate.* TO 'feedgate'@'%';
