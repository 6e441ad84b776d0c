-- Lesson 6: kNN queries with a WHERE clause.
--
-- A filtered kNN query returns exactly min(LIMIT, matching rows) rows: the k nearest among the
-- rows that satisfy the WHERE clause. vsql counts the matching rows first: a few thousand or
-- fewer are scanned exactly, and more get an index search that skips non-matching rows.
-- EXPLAIN shows which one a query gets (lesson 9).
--
-- Run:  vsql < sql_examples/06_filtered_knn.sql

CREATE TABLE items (id INTEGER, category VARCHAR, price DECIMAL(6, 2), embedding vector(3));
INSERT INTO items VALUES
    (1, 'fruit', 1.20, '[1.0, 0.1, 0.0]'),
    (2, 'fruit', 0.80, '[0.9, 0.2, 0.1]'),
    (3, 'fruit', 2.50, '[0.8, 0.0, 0.3]'),
    (4, 'vegetable', 0.60, '[0.1, 1.0, 0.0]'),
    (5, 'vegetable', 1.10, '[0.2, 0.9, 0.2]'),
    (6, 'vegetable', 3.00, '[0.0, 0.8, 0.4]'),
    (7, 'grain', 0.90, '[0.1, 0.1, 1.0]'),
    (8, 'grain', 1.50, '[0.3, 0.0, 0.9]'),
    (9, 'vegetable', 0.70, '[0.6, 0.6, 0.1]'),
    (10, 'grain', 2.20, '[0.0, 0.3, 0.8]');

CREATE INDEX items_l2 ON items USING hnsw (embedding vector_l2_ops);

-- The 3 vegetables nearest to [1, 0, 0]: every row comes from the category.
SELECT id, category, embedding <-> '[1, 0, 0]' AS distance
FROM items WHERE category = 'vegetable'
ORDER BY distance LIMIT 3;

-- Two conditions.
SELECT id, category, price, embedding <-> '[1, 0, 0]' AS distance
FROM items WHERE category IN ('fruit', 'grain') AND price < 2
ORDER BY distance LIMIT 3;

-- Only 2 rows match, so LIMIT 5 returns those 2.
SELECT id, price, embedding <-> '[1, 0, 0]' AS distance
FROM items WHERE price >= 2.5
ORDER BY distance LIMIT 5;

-- No row matches: an empty result.
SELECT id, embedding <-> '[1, 0, 0]' AS distance
FROM items WHERE price > 100
ORDER BY distance LIMIT 3;

-- A filter on a subquery works the same way.
SELECT id, category, embedding <-> '[0, 0, 1]' AS distance
FROM items WHERE category = (SELECT category FROM items WHERE id = 5)
ORDER BY distance LIMIT 2;
