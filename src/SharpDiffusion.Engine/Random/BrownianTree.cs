using System.Numerics;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Random;

/// <summary>
/// torchsde 0.2.6's <c>BrownianTree</c> (a <c>BrownianInterval</c> with <c>halfway_tree</c>, no Lévy area, tol 1e-6,
/// pool size 24) with A1111's normal generator: one Brownian motion on [t0, t1] whose increments are pure functions
/// of the seed and the interval, so the SDE samplers get the same noise whatever the step order.
/// Times are snapped to a 1e-6 grid with Python's <c>round(x, 6)</c>; the interval tree splits every node at its
/// rounded midpoint and draws each split from a numpy <c>SeedSequence</c> keyed by the node's path (Brownian bridge).
/// Every float32 operation follows torchsde's order, so increments match bit for bit.
/// </summary>
public sealed class BrownianTree : IDisposable
{
    private const int Digits = 6; // -log10(tol)
    private const int PoolSize = 24;
    private const int CacheCapacity = 256;

    private readonly BigInteger entropy;
    private readonly long[] shape;
    private readonly NoiseSourceKind noiseKind;
    private readonly Node root;
    private readonly Tensor rootW;
    private readonly Dictionary<(ulong Key, int Depth), LinkedListNode<((ulong Key, int Depth) Id, Tensor W)>> cache = new();
    private readonly LinkedList<((ulong Key, int Depth) Id, Tensor W)> recency = new();

    /// <param name="t0">start time (the unrounded value seeds the root increment's scale)</param>
    /// <param name="t1">end time, &gt; t0</param>
    /// <param name="entropy">the seed (A1111: the image's seed)</param>
    /// <param name="shape">shape of one increment (one image's latents)</param>
    /// <param name="noiseKind">A1111's RNG source: which generator <c>randn(seed)</c> uses</param>
    public BrownianTree(double t0, double t1, BigInteger entropy, ReadOnlySpan<long> shape, NoiseSourceKind noiseKind = NoiseSourceKind.Cpu)
    {
        if (!(t1 > t0)) throw new ArgumentException($"a Brownian tree needs t0 < t1, got [{t0:R}, {t1:R}]");
        if (entropy.Sign < 0) throw new ArgumentOutOfRangeException(nameof(entropy), entropy, "the Brownian tree's seed must not be negative");
        this.entropy = entropy;
        this.shape = shape.ToArray();
        this.noiseKind = noiseKind;
        T0 = t0;
        T1 = t1;
        root = new Node(0, 0, Round(t0), Round(t1));
        var seeds = new NumpySeedSequence(entropy, null, PoolSize).GenerateState(3);
        using var normal = Randn(seeds[0]);
        rootW = (normal * (float)Math.Sqrt(t1 - t0)).DetachFromDisposeScope();
    }

    public double T0 { get; }

    public double T1 { get; }

    /// <summary>The rounded root interval (torchsde's <c>_start</c>, <c>_end</c>); queries are clamped to it.</summary>
    public double Start => root.Start;

    public double End => root.End;

    /// <summary>The increment over the whole tree (torchsde's <c>_w_h</c>).</summary>
    public Tensor RootIncrement => rootW;

    /// <summary>Python <c>round(x, 6)</c>, the grid every time is snapped to.</summary>
    public static double Round(double x) => PythonRounding.Round(x, Digits);

    /// <summary>W(tb) - W(ta) for ta ≤ tb (clamped to [<see cref="Start"/>, <see cref="End"/>]); a new tensor.</summary>
    public Tensor Increment(double ta, double tb)
    {
        if (ta > tb) throw new ArgumentException($"Brownian increment needs ta <= tb, got [{ta:R}, {tb:R}]");
        if (ta < root.Start) ta = root.Start;
        if (tb > root.End) tb = root.End;
        if (ta == tb) return zeros(shape, ScalarType.Float32);
        var nodes = Decompose(ta, tb);
        using var scope = NewDisposeScope();
        Tensor sum = W(nodes[0]).clone();
        for (int i = 1; i < nodes.Count; i++) sum = sum + W(nodes[i]);
        return sum.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The nodes whose increments make up [round(ta), round(tb)] (torchsde's <c>_loc</c>), left to right, as
    /// (path from the root with L/R, start, end).
    /// </summary>
    public IReadOnlyList<(string Path, double Start, double End)> Locate(double ta, double tb)
    {
        if (ta < root.Start) ta = root.Start;
        if (tb > root.End) tb = root.End;
        return Decompose(ta, tb).Select(n => (n.PathText, n.Start, n.End)).ToArray();
    }

    private List<Node> Decompose(double ta, double tb)
    {
        double a = Round(ta), b = Round(tb);
        if (a == b)
        {
            // torchsde 0.2.6 recurses forever here (A1111 then keeps the last latents); say why instead.
            throw new InvalidOperationException(
                $"Brownian tree query [{ta:R}, {tb:R}] is narrower than its 1e-6 grid (both ends round to {a:R}); torchsde cannot sample it either");
        }
        var found = new List<Node>();
        Descend(root, a, b, found);
        return found;
    }

    private static void Descend(Node node, double a, double b, List<Node> found)
    {
        while (true)
        {
            if (a == node.Start && b == node.End)
            {
                found.Add(node);
                return;
            }
            double mid = node.Mid;
            if (b <= mid)
            {
                node = node.Child(right: false);
            }
            else if (a >= mid)
            {
                node = node.Child(right: true);
            }
            else
            {
                Descend(node.Child(right: false), a, mid, found);
                node = node.Child(right: true);
                a = mid;
            }
        }
    }

    /// <summary>The node's increment (cached; owned by the tree).</summary>
    private Tensor W(Node node)
    {
        if (node.Depth == 0) return rootW;
        if (cache.TryGetValue(node.Id, out var hit))
        {
            recency.Remove(hit);
            recency.AddFirst(hit);
            return hit.Value.W;
        }
        var parent = node.Parent(root);
        var parentW = W(parent);
        var (left, right) = Split(parent, parentW);
        Remember(parent.Child(right: false).Id, left);
        Remember(parent.Child(right: true).Id, right);
        return node.IsRight ? right : left;
    }

    /// <summary>Brownian bridge: both children of <paramref name="parent"/> from its seed (torchsde <c>_randn</c> with the parent's W seed).</summary>
    private (Tensor Left, Tensor Right) Split(Node parent, Tensor parentW)
    {
        var spawnKey = new[] { new BigInteger(parent.Key), new BigInteger(parent.Depth) };
        uint seed = new NumpySeedSequence(entropy, spawnKey, PoolSize).GenerateState(1)[0];
        double mid = parent.Mid;
        double hReciprocal = 1.0 / (parent.End - parent.Start);
        double leftDiff = mid - parent.Start, rightDiff = parent.End - mid;
        double variance = leftDiff * rightDiff * hReciprocal;
        using var scope = NewDisposeScope();
        using var normal = Randn(seed);
        var mean = parentW * (float)leftDiff * (float)hReciprocal;
        var left = mean + normal * (float)Math.Sqrt(variance);
        var right = parentW - left;
        return (left.DetachFromDisposeScope(), right.DetachFromDisposeScope());
    }

    private void Remember((ulong, int) id, Tensor w)
    {
        if (cache.Remove(id, out var old))
        {
            recency.Remove(old);
            old.Value.W.Dispose();
        }
        cache[id] = recency.AddFirst((id, w));
        while (cache.Count > CacheCapacity)
        {
            var last = recency.Last!;
            recency.RemoveLast();
            cache.Remove(last.Value.Id);
            last.Value.W.Dispose();
        }
    }

    private Tensor Randn(uint seed)
    {
        var source = NoiseSources.Create(noiseKind, seed);
        try
        {
            return source.Randn(shape);
        }
        finally
        {
            (source as IDisposable)?.Dispose();
        }
    }

    public void Dispose()
    {
        rootW.Dispose();
        foreach (var entry in recency) entry.W.Dispose();
        recency.Clear();
        cache.Clear();
    }

    /// <summary>A node: its path from the root as a binary number (L = 0, R = 1) and length, and its rounded bounds.</summary>
    private sealed record Node(ulong Key, int Depth, double Start, double End)
    {
        public double Mid { get; } = Round(0.5 * (End + Start));

        public (ulong, int) Id => (Key, Depth);

        public bool IsRight => (Key & 1) == 1;

        public string PathText => Depth == 0 ? "" : new string(Enumerable.Range(0, Depth).Select(i => ((Key >> (Depth - 1 - i)) & 1) == 1 ? 'R' : 'L').ToArray());

        public Node Child(bool right)
        {
            if (Depth >= 63) throw new InvalidOperationException("Brownian tree deeper than 63 levels");
            return right ? new Node((Key << 1) | 1, Depth + 1, Mid, End) : new Node(Key << 1, Depth + 1, Start, Mid);
        }

        /// <summary>The parent, rebuilt by walking down from the root (bounds are a function of the path).</summary>
        public Node Parent(Node root)
        {
            var node = root;
            for (int level = Depth - 2; level >= 0; level--) node = node.Child(((Key >> (level + 1)) & 1) == 1);
            return node;
        }
    }
}
