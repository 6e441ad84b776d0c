-- Lesson 7: kNN queries inside larger queries.
--
-- An indexed kNN query can stand anywhere a SELECT can: in a CTE, in each branch of a UNION,
-- or in a LATERAL subquery, which runs one kNN search per row of the outer table. Other tables
-- join to its result as to any subquery.
--
-- Run:  vsql < sql_examples/07_knn_in_joins_and_ctes.sql

CREATE TABLE items (id INTEGER, name VARCHAR, category_id INTEGER, embedding vector(3));
INSERT INTO items VALUES
    (1, 'apple', 1, '[1.0, 0.1, 0.0]'),
    (2, 'pear', 1, '[0.9, 0.2, 0.1]'),
    (3, 'quince', 1, '[0.8, 0.0, 0.3]'),
    (4, 'carrot', 2, '[0.1, 1.0, 0.0]'),
    (5, 'leek', 2, '[0.2, 0.9, 0.2]'),
    (6, 'kale', 2, '[0.0, 0.8, 0.4]'),
    (7, 'oats', 3, '[0.1, 0.1, 1.0]'),
    (8, 'rye', 3, '[0.3, 0.0, 0.9]');

CREATE TABLE categories (category_id INTEGER, category VARCHAR);
INSERT INTO categories VALUES (1, 'fruit'), (2, 'vegetable'), (3, 'grain');

CREATE TABLE searches (search_id INTEGER, query vector(3));
INSERT INTO searches VALUES (1, '[1, 0, 0]'), (2, '[0, 1, 0]'), (3, '[0, 0, 1]');

CREATE INDEX items_l2 ON items USING hnsw (embedding vector_l2_ops);

-- LATERAL: the 2 nearest items for every search.
SELECT s.search_id, n.id, n.distance
FROM searches s, LATERAL (
    SELECT i.id, i.embedding <-> s.query AS distance
    FROM items i ORDER BY distance LIMIT 2
) n
ORDER BY s.search_id, n.distance;

-- A CTE holds the kNN result, and a join adds each item's category.
WITH nearest AS (
    SELECT id, name, category_id, embedding <-> '[0.5, 0.5, 0]' AS distance
    FROM items ORDER BY distance LIMIT 3
)
SELECT nearest.id, nearest.name, c.category, nearest.distance
FROM nearest JOIN categories c USING (category_id)
ORDER BY nearest.distance;

-- UNION ALL of two kNN queries, one per query vector.
(SELECT 'near [1,0,0]' AS query, id FROM items ORDER BY embedding <-> '[1, 0, 0]' LIMIT 2)
UNION ALL
(SELECT 'near [0,0,1]' AS query, id FROM items ORDER BY embedding <-> '[0, 0, 1]' LIMIT 2)
ORDER BY query, id;

-- Save a kNN result in a table.
CREATE TABLE nearest_to_kale AS
SELECT id, name, embedding <-> (SELECT k.embedding FROM items k WHERE k.name = 'kale') AS distance
FROM items ORDER BY distance LIMIT 3;

SELECT id, name FROM nearest_to_kale ORDER BY distance;
