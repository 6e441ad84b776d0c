-- Lesson 9: EXPLAIN shows whether a query uses a vector index.
--
-- EXPLAIN returns DuckDB's plan with vsql's lines first (key vsql_plan):
--   "HNSW Index Scan using <index> on <table> (<metric>, ef_search=<n>, k=<k>)" when an index
--   finds the rows ("Index Only Scan" when it also returns every selected column); with a WHERE clause, a "Filter:" line with the number of matching rows
--   and the search strategy; otherwise "Exact scan: <reason>".
--
-- Run:  vsql < sql_examples/09_explain.sql

CREATE TABLE items (id INTEGER, category VARCHAR, embedding vector(3));
INSERT INTO items
SELECT i, CASE WHEN i % 4 = 0 THEN 'rare' ELSE 'common' END,
       [cos(i / 7), sin(i / 7), (i % 10) / 10]::FLOAT[3]
FROM range(100) t(i);

CREATE INDEX items_cosine ON items USING hnsw (embedding vector_cosine_ops);

-- Uses the index.
EXPLAIN SELECT id FROM items ORDER BY embedding <=> '[1, 0, 0]' LIMIT 5;

-- Uses the index and shows the filter: 25 of 100 rows match, so they are scanned exactly.
EXPLAIN SELECT id FROM items WHERE category = 'rare' ORDER BY embedding <=> '[1, 0, 0]' LIMIT 5;

-- The search width follows the setting.
SET hnsw.ef_search = 120;
EXPLAIN SELECT id FROM items ORDER BY embedding <=> '[1, 0, 0]' LIMIT 5;
RESET hnsw.ef_search;

-- Exact scans, each with its reason:
-- no index for L2 distance on this column,
EXPLAIN SELECT id FROM items ORDER BY embedding <-> '[1, 0, 0]' LIMIT 5;
-- DESC asks for the farthest rows,
EXPLAIN SELECT id FROM items ORDER BY embedding <=> '[1, 0, 0]' DESC LIMIT 5;
-- the index scan is switched off.
SET vsql.enable_index_scan = off;
EXPLAIN SELECT id FROM items ORDER BY embedding <=> '[1, 0, 0]' LIMIT 5;
RESET vsql.enable_index_scan;

-- EXPLAIN ANALYZE also runs the query and shows DuckDB's timings.
EXPLAIN ANALYZE SELECT id FROM items ORDER BY embedding <=> '[1, 0, 0]' LIMIT 5;

-- An index can keep a copy of other columns (INCLUDE, as in PostgreSQL). A query that selects
-- only those columns and the distance then gets its rows from the index alone, without a
-- second DuckDB statement that fetches the rows.
DROP INDEX items_cosine;
CREATE INDEX items_covering ON items USING hnsw (embedding vector_cosine_ops) INCLUDE (id);
EXPLAIN SELECT id, embedding <=> '[1, 0, 0]' AS distance FROM items ORDER BY distance LIMIT 5;
SELECT id, embedding <=> '[1, 0, 0]' AS distance FROM items ORDER BY distance LIMIT 5;
