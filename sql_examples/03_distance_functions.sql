-- Lesson 3: distance operators and vector functions.
--
--   a <-> b   l2_distance(a, b)             Euclidean distance
--   a <#> b   negative_inner_product(a, b)  minus the dot product (smaller is nearer)
--   a <=> b   cosine_distance(a, b)         1 - cosine similarity
--   a <+> b   l1_distance(a, b)             taxicab distance
--             inner_product(a, b)           the dot product (larger is nearer)
--             vector_dims(a), vector_norm(a), l2_normalize(a)
--
-- The operators are pgvector's. The functions are SQL macros stored in the database file, so
-- they also work when the file is opened in the plain DuckDB CLI.
--
-- Run:  vsql < sql_examples/03_distance_functions.sql

CREATE TABLE pairs (pair_id INTEGER, a vector(3), b vector(3));
INSERT INTO pairs VALUES
    (1, '[1, 0, 0]', '[0, 1, 0]'),
    (2, '[1, 2, 3]', '[4, 5, 6]'),
    (3, '[3, 4, 0]', '[3, 4, 0]'),
    (4, '[1, 1, 0]', '[-1, -1, 0]');

-- The operators.
SELECT pair_id,
       a <-> b AS l2,
       a <#> b AS negative_inner_product,
       a <=> b AS cosine,
       a <+> b AS l1
FROM pairs ORDER BY pair_id;

-- The same values with the functions.
SELECT pair_id,
       l2_distance(a, b) AS l2,
       inner_product(a, b) AS inner_product,
       cosine_distance(a, b) AS cosine,
       l1_distance(a, b) AS l1
FROM pairs ORDER BY pair_id;

-- Functions of one vector.
SELECT pair_id, vector_dims(a) AS dims, vector_norm(a) AS norm, l2_normalize(a) AS unit
FROM pairs ORDER BY pair_id;

-- Cosine similarity is 1 - cosine distance. For unit vectors, inner product and cosine
-- similarity are equal, and L2 distance is sqrt(2 * cosine distance).
SELECT pair_id,
       1 - (a <=> b) AS cosine_similarity,
       inner_product(l2_normalize(a), l2_normalize(b)) AS unit_inner_product,
       sqrt(2 * (a <=> b)) AS unit_l2
FROM pairs WHERE pair_id = 2;

-- Text literals work on either side of an operator.
SELECT '[1, 2, 3]' <-> '[1, 2, 5]'::vector(3) AS literal_distance;
