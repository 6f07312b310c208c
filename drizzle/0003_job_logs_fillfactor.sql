-- A run's log is written twice: a small STARTED row, then the closing update, which makes it bigger.
-- That update stays on the row's page (HOT: no new index entries) only when the page has room for
-- the new versions of its rows, and a batch closes all its rows in one statement, before any old
-- version can be pruned. At fillfactor 85 only 13-18 % of a batch's closing updates were HOT; at 40,
-- all of them, for 8 % more heap and 17 % smaller indexes. Runs one at a time were HOT at 85 too
-- and take about twice the heap at 40. Measured with bench/log-storage.ts (BENCHMARKS.md).
-- Applies to pages written from now on.
ALTER TABLE "job_logs" SET (fillfactor = 40);
