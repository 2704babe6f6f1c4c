#!/usr/bin/env bash
# Regenerates the figures of docs/optimizers.md and the guide from the
# repository root:
#   bash docs/img/make_figures.sh
# Each figure is one `ferrograd viz` call; the learning rates are chosen per
# surface (the catalog defaults are the papers' and PyTorch's, not chosen for these).
# Each figure has the paths over the contour map and, below, f - min f per
# step on a log scale. The figures drawn before the catalog's rename labelled
# the clipped Adam `adam` and torch.optim.Adam `adam_l2`; these calls draw the
# same paths under the new names.
set -euo pipefail
bin=${FERROGRAD:-target/release/ferrograd}
out=docs/img
v() { "$bin" viz "$@"; }

v --function rosenbrock --steps 600 --optimizers sgd,sgdm,clipped_adam,lion,adan \
  --lr 0.01 --hp sgd.lr=0.001 --hp sgd.clip=1e9 --hp sgdm.lr=2e-4 --hp lion.lr=0.003 \
  --out $out/viz-rosenbrock-baselines.svg
v --function quadratic --steps 200 --optimizers sgd,sgdm,adagrad,rmsprop,adadelta \
  --lr 0.015 --hp sgd.clip=1e9 --hp adagrad.lr=1 --hp rmsprop.lr=0.05 --hp adadelta.lr=50 \
  --out $out/viz-quadratic-classic.svg
v --function himmelblau --steps 300 --optimizers adam,adamw,amsgrad,nadam,radam,adamax \
  --lr 0.05 --start 0,-0.5 \
  --out $out/viz-himmelblau-adam-family.svg
v --function beale --steps 800 --optimizers adabelief,lamb,lars,muon,prodigy,sf_sgd,sf_adamw \
  --lr 0.01 --hp lars.lr=1 --hp prodigy.lr=1 --hp sf_sgd.lr=0.01 \
  --out $out/viz-beale-modern.svg
v --function saddle --steps 150 --optimizers clipped_adam,lookahead_adam,sam_adam,cautious_adam,ema_adam,cautious_lion \
  --lr 0.02 \
  --out $out/viz-saddle-wrappers.svg
v --function rastrigin --steps 200 --optimizers clipped_adam,sophia,adahessian,newton_cg \
  --lr 0.05 \
  --out $out/viz-rastrigin-second-order.svg
# The guide's quadratic chapter (docs/guide/quadratic-theory.md): the best
# plain gradient descent, lr 2/(mu+L) = 2/101 (sgd with clipping out of the
# way), against heavy ball at Polyak's settings, lr 4/121 and momentum 81/121.
v --function quadratic --steps 150 --optimizers sgd,sgdm \
  --hp sgd.lr=0.019801980198019802 --hp sgd.clip=1e9 \
  --hp sgdm.lr=0.03305785123966942 --hp sgdm.momentum=0.6694214876033058 \
  --out $out/viz-quadratic-heavy-ball.svg
