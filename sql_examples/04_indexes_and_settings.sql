-- Lesson 4: creating vector indexes and tuning their searches.
--
-- An index serves one distance, chosen by its operator class:
--   vector_l2_ops (<->), vector_ip_ops (<#> and inner_product DESC),
--   vector_cosine_ops (<=>), vector_l1_ops (<+>).
-- HNSW takes WITH (m = ..., ef_construction = ...): m is the number of graph neighbours per
-- node (default 16), ef_construction the candidate list size while building (default 64).
-- SET hnsw.ef_search widens each search (default 80): higher recall, slower queries.
-- IVF-Flat and IVF-PQ indexes cluster the rows into lists instead, and SET ivfflat.probes /
-- ivfpq.probes choose how many lists a search scans.
--
-- Run:  vsql < sql_examples/04_indexes_and_settings.sql

-- 200 points on a spiral.
CREATE TABLE points (id INTEGER, embedding vector(3));
INSERT INTO points
SELECT i, [cos(i / 10), sin(i / 10), i / 200]::FLOAT[3] FROM range(200) t(i);

-- One HNSW index per operator class; a name is optional.
CREATE INDEX points_l2 ON points USING hnsw (embedding vector_l2_ops);
CREATE INDEX points_ip ON points USING hnsw (embedding vector_ip_ops) WITH (m = 8);
CREATE INDEX points_cosine ON points USING hnsw (embedding vector_cosine_ops)
    WITH (m = 8, ef_construction = 32);
CREATE INDEX ON points USING hnsw (embedding vector_l1_ops);

-- IVF-Flat: k-means lists; IVF-PQ also compresses the vectors (m subvectors of nbits bits).
CREATE INDEX points_ivfflat ON points USING ivfflat (embedding vector_l2_ops) WITH (lists = 4);
CREATE INDEX points_ivfpq ON points USING ivfpq (embedding vector_l2_ops)
    WITH (lists = 4, m = 3, nbits = 4);

-- Every index of the connection, with its options, indexed rows and memory.
SELECT index_name, method, metric, options, rows FROM vsql_indexes ORDER BY index_name;

-- Search settings last for the connection.
SHOW hnsw.ef_search;
SET hnsw.ef_search = 100;
SHOW hnsw.ef_search;
RESET hnsw.ef_search;
SHOW hnsw.ef_search;

SET ivfflat.probes = 2;
SHOW ivfflat.probes;

-- SET LOCAL lasts until the end of the transaction.
BEGIN;
SET LOCAL hnsw.ef_search = 200;
SHOW hnsw.ef_search;
COMMIT;
SHOW hnsw.ef_search;

-- DROP INDEX removes an index and the copy stored in the database file.
DROP INDEX points_ivfpq;
DROP INDEX IF EXISTS points_ivfpq;
SELECT count(*) AS indexes_left FROM vsql_indexes;
