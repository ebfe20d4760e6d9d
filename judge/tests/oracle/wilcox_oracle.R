# Independent oracle for canarylab's Mann-Whitney classifier.
#
# Generates random two-sample cases across sizes, ties, skew and shift
# direction, and records what R's own wilcox.test says (confidence interval
# and Hodges-Lehmann estimate, normal approximation with continuity
# correction), plus Kayenta's location estimate (the same root with the
# continuity correction kept) and the label NetflixACAJudge-v1.0's rule
# gives from those numbers. Output: JSON on stdout.
#
# Regenerate (needs only r-base-core):
#   Rscript judge/tests/oracle/wilcox_oracle.R > judge/tests/fixtures/r_oracle.json
# CI does not need R: the JSON is committed and read by tests/it/r_oracle.rs.

set.seed(20261122)

draw <- function(kind, n, shift) {
  v <- switch(kind,
    normal      = rnorm(n, 100, 10),
    lognormal   = exp(rnorm(n, log(100), 0.5)),
    exponential = rexp(n, 1 / 50),
    heavy       = 100 + 10 * rt(n, df = 3),
    discrete    = as.numeric(sample(0:6, n, replace = TRUE)),
    rounded     = round(exp(rnorm(n, log(20), 0.4))),
    zeros       = ifelse(runif(n) < 0.7, 0, rexp(n, 1)))
  if (kind %in% c("discrete", "zeros")) v + round(shift) else v * (1 + shift)
}

# Kayenta's estimate: root of the statistic with the continuity correction,
# by R's own uniroot (zeroin) with wilcox.test's tolerance.
kayenta_estimate <- function(x, y) {
  nx <- length(x); ny <- length(y)
  wdiff <- function(d) {
    dr <- rank(c(x - d, y))
    nties <- table(dr)
    dz <- sum(dr[seq_along(x)]) - nx * (nx + 1) / 2 - nx * ny / 2
    sigma <- sqrt((nx * ny / 12) * ((nx + ny + 1) - sum(nties^3 - nties) / ((nx + ny) * (nx + ny - 1))))
    (dz - sign(dz) * 0.5) / sigma
  }
  mumin <- min(x) - max(y); mumax <- max(x) - min(y)
  uniroot(wdiff, lower = mumin, upper = mumax, tol = 1e-4)$root
}

fmt <- function(v) paste0("[", paste(sprintf("%.17g", v), collapse = ","), "]")

kinds <- c("normal", "lognormal", "exponential", "heavy", "discrete", "rounded", "zeros")
sizes <- c(3, 5, 8, 12, 20, 30, 60, 100, 180, 400)
levels <- c(0.98, 0.98, 0.98, 0.95, 0.90, 0.99)
shifts <- c(-0.3, -0.05, 0, 0, 0.02, 0.1, 0.5)

cases <- character(0)
while (length(cases) < 140) {
  kind <- sample(kinds, 1)
  n <- sample(sizes, 1); m <- if (runif(1) < 0.6) n else sample(sizes, 1)
  shift <- sample(shifts, 1)
  conf <- sample(levels, 1)
  y <- draw(kind, m, 0)          # control (baseline)
  x <- draw(kind, n, shift)      # experiment (canary)
  # Kayenta answers these before any test runs; they are not R's to judge.
  if (length(unique(c(x, y))) < 2) next
  if (length(x) == length(y) && all(sort(x) == sort(y))) next
  if (length(unique(x)) == 1 && length(unique(y)) == 1) next
  w <- suppressWarnings(wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = TRUE, conf.level = conf))
  est_k <- kayenta_estimate(x, y)
  bound <- 0.25 * abs(est_k)
  ratio <- if (mean(x) == 0 || mean(y) == 0) NaN else mean(x) / mean(y)
  high <- w$conf.int[1] > bound && (is.nan(ratio) || ratio >= 1)
  low <- w$conf.int[2] < -bound && (is.nan(ratio) || ratio <= 1)
  label <- if (high) "High" else if (low) "Low" else "Pass"
  cases <- c(cases, sprintf(
    '{"kind":"%s","shift":%s,"confLevel":%s,"experiment":%s,"control":%s,"ciLower":%.17g,"ciUpper":%.17g,"estimateR":%.17g,"estimateKayenta":%.17g,"pValue":%.17g,"label":"%s"}',
    kind, shift, conf, fmt(x), fmt(y), w$conf.int[1], w$conf.int[2], w$estimate, est_k, w$p.value, label))
}

cat('{"generator":"judge/tests/oracle/wilcox_oracle.R","r":"', R.version.string, '","cases":[\n', sep = "")
cat(paste(cases, collapse = ",\n"))
cat("\n]}\n")
