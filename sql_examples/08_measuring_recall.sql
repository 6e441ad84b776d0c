-- Lesson 8: measuring the recall of an index.
--
-- An approximate index can miss some of the true nearest rows. recall@k is the share of the
-- exact top k that the index returns. SET vsql.enable_index_scan = off runs the same SQL as an
-- exact scan, which gives the reference. This lesson builds a deliberately small HNSW graph
-- (m = 8, ef_construction = 16) on 442 real 384-dimensional embeddings, and compares
-- hnsw.ef_search = 10 with ef_search = 100.
--
-- Run from the repository root:  vsql < sql_examples/08_measuring_recall.sql

-- Rows whose id ends in 0 are the queries; the others are the searched table.
CREATE TABLE packages AS
SELECT id, name, embedding::FLOAT[384] AS embedding
FROM read_parquet('sql_examples/data/packages_500.parquet') WHERE id % 10 <> 0;

CREATE TABLE queries AS
SELECT id AS query_id, embedding::FLOAT[384] AS embedding
FROM read_parquet('sql_examples/data/packages_500.parquet') WHERE id % 10 = 0;

SELECT (SELECT count(*) FROM packages) AS packages, (SELECT count(*) FROM queries) AS queries;

CREATE INDEX packages_small_graph ON packages USING hnsw (embedding vector_cosine_ops)
    WITH (m = 8, ef_construction = 16);

-- The top 10 of every query through the index, with a narrow search...
SET hnsw.ef_search = 10;
CREATE TABLE found_ef10 AS
SELECT q.query_id, n.id
FROM queries q, LATERAL (
    SELECT p.id FROM packages p ORDER BY p.embedding <=> q.embedding LIMIT 10
) n;

-- ... with a wider one...
SET hnsw.ef_search = 100;
CREATE TABLE found_ef100 AS
SELECT q.query_id, n.id
FROM queries q, LATERAL (
    SELECT p.id FROM packages p ORDER BY p.embedding <=> q.embedding LIMIT 10
) n;

-- ... and exactly, without the index.
SET vsql.enable_index_scan = off;
CREATE TABLE exact AS
SELECT q.query_id, n.id, n.distance
FROM queries q, LATERAL (
    SELECT p.id, p.embedding <=> q.embedding AS distance
    FROM packages p ORDER BY distance LIMIT 10
) n;
RESET vsql.enable_index_scan;
RESET hnsw.ef_search;

-- recall@10: found rows that are in the exact top 10, over all exact rows.
SELECT 10 AS ef_search,
       (SELECT count(*) FROM found_ef10 JOIN exact USING (query_id, id)) / (SELECT count(*) FROM exact) AS recall_at_10
UNION ALL
SELECT 100,
       (SELECT count(*) FROM found_ef100 JOIN exact USING (query_id, id)) / (SELECT count(*) FROM exact)
ORDER BY ef_search;

-- The exact top 10 of the first query, for reference.
SELECT e.id, p.name, e.distance AS exact_distance
FROM exact e JOIN packages p USING (id)
WHERE e.query_id = (SELECT min(query_id) FROM queries)
ORDER BY e.distance;
