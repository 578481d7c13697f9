"""InfoNCE against a queue of negative keys: the MoCo loss, thesis eq 3.1.

    L_q = -log( exp(q . k+ / tau) / sum_{i=0..K} exp(q . k_i / tau) )

where the sum runs over the positive key and the K queued negatives (He et al.
2020, eq 1; van den Oord et al. 2018). It is the cross-entropy of a (K+1)-way
softmax classifier whose right answer is the positive, Algorithm 1 line by line.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def infonce(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean InfoNCE loss over a batch (thesis eq 3.1).

    Args:
        query: (B, D) L2-normalised queries q; the gradient flows here only.
        positive: (B, D) L2-normalised positive keys k+, row i pairs with query i.
        negatives: (K, D) L2-normalised negative keys, shared by every query.
        temperature: tau > 0.

    Returns:
        Scalar float32: the loss averaged over the B queries, computed in
        float32 even under autocast. Keys receive no gradient (Algorithm 1:
        ``k = k.detach()``).
    """
    # Under bf16 autocast the matmul would round logits of size up to 1/tau to 3 significant digits.
    with torch.autocast(query.device.type, enabled=False):
        query, positive, negatives = query.float(), positive.detach().float(), negatives.detach().float()
        positive_logits = (query * positive).sum(dim=1, keepdim=True)  # (B, 1)
        negative_logits = query @ negatives.T  # (B, K)
        logits = torch.cat([positive_logits, negative_logits], dim=1) / temperature
        labels = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)  # positives sit in column 0
        return F.cross_entropy(logits, labels)
