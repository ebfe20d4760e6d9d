# Reference timing for the judge benchmark: R's wilcox.test with a
# confidence interval (what Kayenta's judge computes per metric), on the
# same kind of data as judge/benches/classify.rs (log-normal, 5% shift).
#   Rscript judge/bench/wilcox_reference.R
set.seed(1)
for (n in c(60, 180)) {
  x <- 100 * 1.05 * exp(0.3 * rnorm(n)); y <- 100 * exp(0.3 * rnorm(n))
  reps <- if (n == 60) 2000 else 500
  t <- system.time(for (i in 1:reps) wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = TRUE, conf.level = 0.98))
  cat(sprintf("R wilcox.test conf.int %d vs %d: %.3f ms per call\n", n, n, 1000 * t[["elapsed"]] / reps))
}
