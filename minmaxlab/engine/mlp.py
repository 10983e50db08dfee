"""Private numba kernels: MLP forward/backward and the GAN operator.

Parameters of a network are one flat float64 vector: for each layer, its weight matrix W
(out x in, row-major) then its bias b (out). Activations: 0 linear, 1 ReLU, 2 leaky ReLU,
3 tanh, 4 sigmoid. The discriminator outputs one logit (linear output).

The architecture travels in the problem's parameter vector P (see ``encode``), the data in A
(worker i's points in A[i, :n_i], the held-out set in the mean data), fixed latent vectors in S.
"""

import numpy as np
from numba import njit

from minmaxlab.engine.streams import STATE_WORDS, normal, uniform

ACT_LINEAR = 0
ACT_RELU = 1
ACT_LEAKY = 2
ACT_TANH = 3
ACT_SIGMOID = 4
LOSS_MINIMAX = 0
LOSS_NONSATURATING = 1

# P layout: [loss, slope, nG, sizes_G (nG + 1), actG_hidden, actG_out,
#            nD, sizes_D (nD + 1), actD_hidden, pack, M, counts (M)]
# pack: the discriminator judges ``pack`` samples at once, concatenated (PacGAN): its input size
# sizes_D[0] is pack x the data dimension, and a batch of m samples is m / pack of its inputs.


@njit(cache=True)
def _parse(P):
    loss = int(P[0])
    slope = P[1]
    nG = int(P[2])
    sG = np.empty(nG + 1, dtype=np.int64)
    for k in range(nG + 1):
        sG[k] = int(P[3 + k])
    o = 3 + nG + 1
    aGh = int(P[o])
    aGo = int(P[o + 1])
    nD = int(P[o + 2])
    sD = np.empty(nD + 1, dtype=np.int64)
    for k in range(nD + 1):
        sD[k] = int(P[o + 3 + k])
    o2 = o + 3 + nD + 1
    aDh = int(P[o2])
    pack = int(P[o2 + 1])
    M = int(P[o2 + 2])
    return loss, slope, sG, aGh, aGo, sD, aDh, pack, M, o2 + 3


@njit(cache=True)
def n_params(sizes):
    n = 0
    for k in range(sizes.shape[0] - 1):
        n += sizes[k + 1] * sizes[k] + sizes[k + 1]
    return n


@njit(cache=True)
def _activate(kind, H, slope):
    if kind == ACT_RELU:
        for i in range(H.shape[0]):
            for j in range(H.shape[1]):
                if H[i, j] < 0.0:
                    H[i, j] = 0.0
    elif kind == ACT_LEAKY:
        for i in range(H.shape[0]):
            for j in range(H.shape[1]):
                if H[i, j] < 0.0:
                    H[i, j] *= slope
    elif kind == ACT_TANH:
        for i in range(H.shape[0]):
            for j in range(H.shape[1]):
                H[i, j] = np.tanh(H[i, j])
    elif kind == ACT_SIGMOID:
        for i in range(H.shape[0]):
            for j in range(H.shape[1]):
                H[i, j] = 1.0 / (1.0 + np.exp(-H[i, j]))


@njit(cache=True)
def _act_backward(kind, pre, post, G, slope):
    """G <- G * act'(pre), in place (post = act(pre))."""
    if kind == ACT_RELU:
        for i in range(G.shape[0]):
            for j in range(G.shape[1]):
                if pre[i, j] <= 0.0:
                    G[i, j] = 0.0
    elif kind == ACT_LEAKY:
        for i in range(G.shape[0]):
            for j in range(G.shape[1]):
                if pre[i, j] <= 0.0:
                    G[i, j] *= slope
    elif kind == ACT_TANH:
        for i in range(G.shape[0]):
            for j in range(G.shape[1]):
                G[i, j] *= 1.0 - post[i, j] * post[i, j]
    elif kind == ACT_SIGMOID:
        for i in range(G.shape[0]):
            for j in range(G.shape[1]):
                G[i, j] *= post[i, j] * (1.0 - post[i, j])


@njit(cache=True)
def _layer(params, off, n_in, n_out):
    W = np.ascontiguousarray(params[off:off + n_out * n_in]).reshape(n_out, n_in)
    b = params[off + n_out * n_in:off + n_out * n_in + n_out]
    return W, b


@njit(cache=True)
def _forward(params, off, sizes, act_h, act_o, slope, X):
    """Forward pass; returns (pre-activations, post-activations), one (m, size) array per layer,
    posts[0] = X."""
    L = sizes.shape[0] - 1
    pres = [X]
    posts = [X]
    H = X
    o = off
    for k in range(L):
        W, b = _layer(params, o, sizes[k], sizes[k + 1])
        o += sizes[k + 1] * sizes[k] + sizes[k + 1]
        Z = np.dot(H, W.T)
        for i in range(Z.shape[0]):
            for j in range(Z.shape[1]):
                Z[i, j] += b[j]
        A = Z.copy()
        _activate(act_o if k == L - 1 else act_h, A, slope)
        pres.append(Z)
        posts.append(A)
        H = A
    return pres, posts


@njit(cache=True)
def _backward(params, off, sizes, act_h, act_o, slope, pres, posts, dOut, grad, goff, want):
    """Backpropagate dL/d(output) through the network: adds dL/dparams into grad[goff:] when
    ``want``; returns dL/d(input)."""
    L = sizes.shape[0] - 1
    # parameter offsets of each layer
    offs = np.empty(L, dtype=np.int64)
    o = 0
    for k in range(L):
        offs[k] = o
        o += sizes[k + 1] * sizes[k] + sizes[k + 1]
    G = dOut.copy()
    for k in range(L - 1, -1, -1):
        _act_backward(act_o if k == L - 1 else act_h, pres[k + 1], posts[k + 1], G, slope)
        n_in = sizes[k]
        n_out = sizes[k + 1]
        if want:
            dW = np.dot(G.T, posts[k])
            base = goff + offs[k]
            for a in range(n_out):
                for c in range(n_in):
                    grad[base + a * n_in + c] += dW[a, c]
            bb = base + n_out * n_in
            for i in range(G.shape[0]):
                for a in range(n_out):
                    grad[bb + a] += G[i, a]
        W, _ = _layer(params, off + offs[k], n_in, n_out)
        G = np.dot(G, W)
    return G


@njit(cache=True, inline="always")
def sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + np.exp(-x))
    e = np.exp(x)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def softplus(x):  # log(1 + e^x), stable
    if x > 0:
        return x + np.log1p(np.exp(-x))
    return np.log1p(np.exp(x))


@njit(cache=True)
def _sample_batch(A, w, n_w, m, dx, dz, state, i, latent):
    """Mini-batch of m data points of worker w (uniform, with replacement) and m latent vectors."""
    Xr = np.empty((m, dx))
    for r in range(m):
        j = int(uniform(state, i) * n_w)
        if j >= n_w:
            j = n_w - 1
        for c in range(dx):
            Xr[r, c] = A[w, j, c]
    for r in range(m):
        for c in range(dz):
            latent[r, c] = normal(state, i)
    return Xr


@njit(cache=True)
def _gan_point(z, out, P, A, S, w, state, batch):
    """F of worker w at z into out (and the two losses): batch > 0 samples a mini-batch from the
    worker's stream; batch == 0 uses all of the worker's data and the fixed latent set S."""
    loss, slope, sG, aGh, aGo, sD, aDh, pack, M, oc = _parse(P)
    dz = sG[0]
    dx = sG[sG.shape[0] - 1]
    nu = n_params(sG)
    kw = w if A.shape[0] > 1 else 0
    n_w = int(P[oc + kw]) if A.shape[0] > 1 else A.shape[1]  # one shared set: all its rows
    if batch > 0:
        latent = np.empty((batch, dz))
        Xr = _sample_batch(A, kw, n_w, batch, dx, dz, state, w, latent)
    else:  # whole packs only
        Xr = np.ascontiguousarray(A[kw, :n_w - n_w % pack, :])
        latent = np.ascontiguousarray(S[:S.shape[0] - S.shape[0] % pack])
    u = np.ascontiguousarray(z[:nu])
    v = np.ascontiguousarray(z[nu:])
    for c in range(out.shape[0]):
        out[c] = 0.0
    # offsets and activations as int64, not literals: numba compiles one version per literal
    zero, linear = np.int64(0), np.int64(ACT_LINEAR)
    accumulate, keep = np.bool_(True), np.bool_(False)
    # generator forward, discriminator on real and fake
    pg, qg = _forward(u, zero, sG, aGh, aGo, slope, latent)
    Xf = qg[len(qg) - 1]
    # packs of samples as rows of the discriminator's input (a view: the rows are contiguous)
    Pr = Xr.reshape(Xr.shape[0] // pack, pack * dx)
    Pf = Xf.reshape(Xf.shape[0] // pack, pack * dx)
    pr, qr = _forward(v, zero, sD, aDh, linear, slope, Pr)
    pf, qf = _forward(v, zero, sD, aDh, linear, slope, Pf)
    lr = qr[len(qr) - 1]
    lf = qf[len(qf) - 1]
    mr = lr.shape[0]
    mf = lf.shape[0]
    # discriminator loss L_D = -(1/mr) sum log sig(l_r) - (1/mf) sum log(1 - sig(l_f))
    dr = np.empty((mr, 1))
    df = np.empty((mf, 1))
    LD = 0.0
    for r in range(mr):
        dr[r, 0] = (sigmoid(lr[r, 0]) - 1.0) / mr
        LD += softplus(-lr[r, 0]) / mr
    for r in range(mf):
        df[r, 0] = sigmoid(lf[r, 0]) / mf
        LD += softplus(lf[r, 0]) / mf
    gv = np.zeros(v.shape[0])
    _backward(v, zero, sD, aDh, linear, slope, pr, qr, dr, gv, zero, accumulate)
    _backward(v, zero, sD, aDh, linear, slope, pf, qf, df, gv, zero, accumulate)
    # generator loss: minimax L_G = (1/mf) sum log(1 - sig(l_f)); non-saturating -(1/mf) sum log sig
    dg = np.empty((mf, 1))
    LG = 0.0
    for r in range(mf):
        s = sigmoid(lf[r, 0])
        if loss == LOSS_MINIMAX:
            dg[r, 0] = -s / mf
            LG -= softplus(lf[r, 0]) / mf
        else:
            dg[r, 0] = (s - 1.0) / mf
            LG += softplus(-lf[r, 0]) / mf
    dummy = np.zeros(1)
    dPf = _backward(v, zero, sD, aDh, linear, slope, pf, qf, dg, dummy, zero, keep)
    dXf = np.ascontiguousarray(dPf).reshape(Xf.shape[0], dx)
    gu = np.zeros(nu)
    _backward(u, zero, sG, aGh, aGo, slope, pg, qg, dXf, gu, zero, accumulate)
    for c in range(nu):
        out[c] = gu[c]
    for c in range(v.shape[0]):
        out[nu + c] = gv[c]
    return LG, LD


@njit(cache=True)
def gan_rows(Z, O, P, A, S, worker, state, batch):
    for r in range(Z.shape[0]):
        _gan_point(Z[r], O[r], P, A, S, worker if worker >= 0 else r, state, batch)


@njit(cache=True)
def gan_losses(z, P, A, S, worker):
    out = np.empty(z.shape[0])
    return _gan_point(z, out, P, A, S, worker, np.zeros((1, STATE_WORDS), dtype=np.uint64),
                      np.int64(0))


@njit(cache=True)
def generate(u, P, latent):
    """Generator samples for latent vectors (rows)."""
    loss, slope, sG, aGh, aGo, sD, aDh, pack, M, oc = _parse(P)
    pg, qg = _forward(np.ascontiguousarray(u), np.int64(0), sG, aGh, aGo, slope, latent)
    return qg[len(qg) - 1]


@njit(cache=True)
def discriminate(v, P, X):
    """The discriminator's logit of each pack of consecutive rows of X (of each row if pack 1)."""
    loss, slope, sG, aGh, aGo, sD, aDh, pack, M, oc = _parse(P)
    Xp = np.ascontiguousarray(X).reshape(X.shape[0] // pack, pack * X.shape[1])
    pr, qr = _forward(np.ascontiguousarray(v), np.int64(0), sD, aDh, np.int64(ACT_LINEAR), slope, Xp)
    return qr[len(qr) - 1]
