-- Lesson 1: tables with vector columns.
--
-- vsql accepts pgvector's column type vector(n) and DuckDB's FLOAT[n]. Both store a fixed-size
-- array of n 32-bit floats, so DESCRIBE shows FLOAT[n] for either. A vector is written as a
-- pgvector text literal ('[1,2,3]'), as a DuckDB list literal ([1, 2, 3]) or as a cast.
--
-- Run from the repository root:  vsql < sql_examples/01_vector_tables.sql

-- pgvector scripts start with this line. vsql accepts it and needs no extension.
CREATE EXTENSION IF NOT EXISTS vector;

-- pgvector's spelling of the column type.
CREATE TABLE items (id INTEGER PRIMARY KEY, label VARCHAR, embedding vector(3));

INSERT INTO items VALUES
    (1, 'pgvector text literal', '[1, 2, 3]'),
    (2, 'DuckDB list literal', [4, 5, 6]),
    (3, 'explicit cast', CAST('[0.5, 0.25, 0]' AS vector(3)));

-- The column is a DuckDB fixed-size array.
DESCRIBE items;

SELECT id, label, embedding FROM items ORDER BY id;

-- DuckDB's spelling of the same type. Values copy between the two without a cast.
CREATE TABLE items_copy (id INTEGER, embedding FLOAT[3]);
INSERT INTO items_copy SELECT id, embedding FROM items;

SELECT id, embedding, typeof(embedding) AS column_type FROM items_copy ORDER BY id;

-- Casts: vector(3) gives FLOAT[3], plain vector gives a list of any length (FLOAT[]),
-- and a cast to VARCHAR prints the vector as text.
SELECT
    '[1,2,3]'::vector(3) AS fixed_size,
    typeof('[1,2,3]'::vector(3)) AS fixed_type,
    '[1,2,3,4]'::vector AS any_length,
    typeof('[1,2,3,4]'::vector) AS any_length_type,
    vector_dims('[1,2,3,4]'::vector) AS dims,
    [1, 2, 3]::FLOAT[3]::VARCHAR AS as_text;

-- A vector of the wrong length is rejected, for example
--   INSERT INTO items VALUES (4, 'too short', '[1, 2]');
-- fails because a FLOAT[3] column needs exactly 3 elements.
