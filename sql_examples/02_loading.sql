-- Lesson 2: loading vectors from CSV and Parquet files.
--
-- vsql runs on DuckDB, so DuckDB's readers load vectors: read_csv, read_parquet, read_json.
-- Text vectors ('[1.0, 0.1, 0.0]') and variable-length lists (FLOAT[]) become fixed-size
-- vectors with a cast to vector(n) or FLOAT[n], which vector indexes need.
--
-- Run from the repository root, where the paths below point:
--   vsql < sql_examples/02_loading.sql

-- CSV: the vector column is text in pgvector's format.
CREATE TABLE items AS
SELECT id, category, embedding::vector(3) AS embedding
FROM read_csv('sql_examples/data/items.csv');

SELECT id, category, embedding, typeof(embedding) AS column_type FROM items ORDER BY id;

-- Parquet: 500 real PyPI package summaries with 384-dimensional all-MiniLM-L6-v2 embeddings.
-- Parquet stores the vectors as lists, which DuckDB reads as FLOAT[]:
SELECT typeof(embedding) AS stored_type
FROM read_parquet('sql_examples/data/packages_500.parquet') LIMIT 1;

-- so the table casts them to FLOAT[384].
CREATE TABLE packages AS
SELECT id, name, released, popularity_rank, summary, embedding::FLOAT[384] AS embedding
FROM read_parquet('sql_examples/data/packages_500.parquet');

SELECT count(*) AS packages, min(vector_dims(embedding)) AS dims, typeof(any_value(embedding)) AS column_type
FROM packages;

-- The embeddings are unit vectors (L2-normalized by the model), up to float rounding.
SELECT round(min(vector_norm(embedding)), 2) AS min_norm, round(max(vector_norm(embedding)), 2) AS max_norm
FROM packages;

-- INSERT ... SELECT appends rows from a file to an existing table.
INSERT INTO items
SELECT id + 100, category, embedding::vector(3) FROM read_csv('sql_examples/data/items.csv') WHERE category = 'grain';

SELECT category, count(*) AS items FROM items GROUP BY category ORDER BY category;

-- From Python, vsql.sample.create_table(con, "packages") loads the bundled 20,000-row sample,
-- and a parameter binds a numpy array or a list as a vector:
--   con.execute("INSERT INTO items VALUES (?, ?, ?)", [9, "fruit", np.array([1, 0, 0], "float32")])
