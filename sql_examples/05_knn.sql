-- Lesson 5: nearest-neighbour (kNN) queries.
--
-- A query of the shape  ORDER BY <distance to a constant vector> LIMIT k  is answered by a
-- vector index on that column with the matching operator class, and by an exact scan when
-- there is none. The result has the same shape either way: k rows ordered by their exact
-- distance; an approximate index may only return a different near row.
--
-- Run:  vsql < sql_examples/05_knn.sql

CREATE TABLE items (id INTEGER, name VARCHAR, embedding vector(3));
INSERT INTO items VALUES
    (1, 'apple', '[1.0, 0.1, 0.0]'),
    (2, 'pear', '[0.9, 0.2, 0.1]'),
    (3, 'quince', '[0.8, 0.0, 0.3]'),
    (4, 'carrot', '[0.1, 1.0, 0.0]'),
    (5, 'leek', '[0.2, 0.9, 0.2]'),
    (6, 'kale', '[0.0, 0.8, 0.4]'),
    (7, 'oats', '[0.1, 0.1, 1.0]'),
    (8, 'rye', '[0.3, 0.0, 0.9]'),
    (9, 'tomato', '[0.6, 0.6, 0.1]'),
    (10, 'rice', '[0.0, 0.3, 0.8]');

CREATE INDEX items_l2 ON items USING hnsw (embedding vector_l2_ops);
CREATE INDEX items_cosine ON items USING hnsw (embedding vector_cosine_ops);
CREATE INDEX items_ip ON items USING hnsw (embedding vector_ip_ops);

-- The 3 items nearest to [1, 0, 0] by L2 distance.
SELECT id, name, embedding <-> '[1, 0, 0]' AS l2_distance
FROM items ORDER BY l2_distance LIMIT 3;

-- By cosine distance: direction only, length ignored.
SELECT id, name, embedding <=> '[0, 2, 0]' AS cosine_distance
FROM items ORDER BY cosine_distance LIMIT 3;

-- By inner product: <#> is its negative, so the largest products come first.
SELECT id, name, embedding <#> '[0, 0, 1]' AS negative_inner_product
FROM items ORDER BY negative_inner_product LIMIT 3;

-- The same with inner_product(), which is a similarity: ORDER BY ... DESC.
SELECT id, name, inner_product(embedding, '[0, 0, 1]') AS inner_product
FROM items ORDER BY inner_product DESC LIMIT 3;

-- The next page: OFFSET skips the first 3 rows.
SELECT id, name, embedding <-> '[1, 0, 0]' AS l2_distance
FROM items ORDER BY l2_distance LIMIT 3 OFFSET 3;

-- The items nearest to another item: the query vector can be a scalar subquery.
SELECT i.id, i.name, i.embedding <-> (SELECT s.embedding FROM items s WHERE s.name = 'leek') AS l2_distance
FROM items i ORDER BY l2_distance LIMIT 4;
