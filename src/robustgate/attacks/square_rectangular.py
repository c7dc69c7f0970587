"""torchattacks' Square attack, correct on images that are not square (the ``square`` kind's attack).

torchattacks sizes its squares from the image area as if the image were square, so on an h x w
image with h != w a square can outgrow the shorter side (Linf), and its L2 start-up grid and
windows overrun the image. :class:`RectangularSquare` caps every square at the shorter side and
lays the L2 grid over both sides; square images run torchattacks' code unchanged.

Apart from :mod:`robustgate.attacks.square`, which registers the kind when specs are read, because
subclassing torchattacks' classes imports torch.
"""

from __future__ import annotations

import math

import torch
import torchattacks


class RectangularSquare(torchattacks.Square):
    """torchattacks' Square attack, correct on non-square images too (see the module docstring)."""

    def attack_single_run(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x.shape[-2:]
        self._shorter_share = min(h, w) ** 2 / (h * w)  # the largest p whose square still fits (1 when h == w)
        if h == w or self.norm == "Linf":
            return super().attack_single_run(x, y)
        return self._l2_run(x, y)

    def p_selection(self, it: int) -> float:
        return min(super().p_selection(it), getattr(self, "_shorter_share", 1.0))

    def _l2_run(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # torchattacks' L2 loop, with the start-up grid laid over both sides and windows at most the shorter side.
        with torch.no_grad():
            c, h, w = x.shape[1:]
            n_features = c * h * w
            delta_init = torch.zeros_like(x)
            s = max(min(h, w) // 5, 1)
            for vh in range((h - s * (h // s)) // 2, h - s + 1, s):
                for vw in range((w - s * (w // s)) // 2, w - s + 1, s):
                    delta_init[:, :, vh : vh + s, vw : vw + s] += self.eta(s).view(1, 1, s, s) * self.random_choice(
                        [x.shape[0], c, 1, 1]
                    )
            x_best = torch.clamp(x + self.normalize_delta(delta_init) * self.eps, 0.0, 1.0)
            margin_min, loss_min = self.margin_and_loss(x_best, y)
            n_queries = torch.ones(x.shape[0]).to(self.device)
            for i_iter in range(self.n_queries):
                idx_to_fool = (margin_min > 0.0).nonzero().flatten()
                if len(idx_to_fool) == 0:
                    break
                x_curr, x_best_curr = self.check_shape(x[idx_to_fool]), self.check_shape(x_best[idx_to_fool])
                y_curr = y[idx_to_fool].reshape(-1)
                margin_min_curr, loss_min_curr = margin_min[idx_to_fool], loss_min[idx_to_fool]
                delta_curr = x_best_curr - x_curr
                s = max(int(round(math.sqrt(self.p_selection(i_iter) * n_features / c))), 3)
                s = min(s + (s % 2 == 0), min(h, w))
                vh, vw = self.random_int(0, h - s), self.random_int(0, w - s)
                window = (slice(None), slice(None), slice(vh, vh + s), slice(vw, vw + s))
                norms_window_1 = (delta_curr[window] ** 2).sum(dim=(-2, -1), keepdim=True).sqrt()
                vh2, vw2 = self.random_int(0, h - s), self.random_int(0, w - s)
                window_2 = (slice(None), slice(None), slice(vh2, vh2 + s), slice(vw2, vw2 + s))
                mask = torch.zeros_like(x_curr)
                mask[window] = 1.0
                mask[window_2] = 1.0
                norms_image = self.lp_norm(x_best_curr - x_curr)
                norms_windows = self.lp_norm(delta_curr * mask)
                new_deltas = torch.ones([x_curr.shape[0], c, s, s]).to(self.device)
                new_deltas *= self.eta(s).view(1, 1, s, s) * self.random_choice([x_curr.shape[0], c, 1, 1])
                new_deltas += delta_curr[window] / (1e-12 + norms_window_1)
                budget = torch.clamp(self.eps**2 - norms_image**2, min=0.0) / c + norms_windows**2
                new_deltas = new_deltas / (1e-12 + (new_deltas**2).sum(dim=(-2, -1), keepdim=True).sqrt()) * budget.sqrt()
                delta_curr[window_2] = 0.0
                delta_curr[window] = new_deltas + 0
                x_new = self.check_shape(torch.clamp(x_curr + self.normalize_delta(delta_curr) * self.eps, 0.0, 1.0))
                margin, loss = self.margin_and_loss(x_new, y_curr)
                improved = (loss < loss_min_curr).float()
                loss_min[idx_to_fool] = improved * loss + (1.0 - improved) * loss_min_curr
                improved = torch.max(improved, (margin <= 0.0).float())
                margin_min[idx_to_fool] = improved * margin + (1.0 - improved) * margin_min_curr
                improved = improved.reshape([-1, *[1] * (x.dim() - 1)])
                x_best[idx_to_fool] = improved * x_new + (1.0 - improved) * x_best_curr
                n_queries[idx_to_fool] += 1.0
        return n_queries, x_best
