using System.Numerics;

namespace SharpDiffusion.Formats.Pickle;

/// <summary>A pickle value used as a dict key, with Python-like equality (1 == 1.0 == True).</summary>
internal readonly struct PickleKey : IEquatable<PickleKey>
{
    /// <summary>Tuples nested deeper than this are refused as keys (hashing recurses).</summary>
    private const int MaxDepth = 32;

    public PickleKey(object? value)
    {
        if (!IsHashable(value)) throw new PickleFormatException($"unhashable {PickleValues.TypeName(value)} used as a dict key or set item");
        Value = value;
    }

    public object? Value { get; }

    public static bool IsHashable(object? value, int depth = 0)
    {
        switch (value)
        {
            case null or string or long or double or bool or BigInteger or byte[] or PickleGlobal:
                return true;
            case PickleTuple t:
                if (depth >= MaxDepth) return false;
                foreach (var item in t) if (!IsHashable(item, depth + 1)) return false;
                return true;
            default:
                return false;
        }
    }

    public bool Equals(PickleKey other) => ValueEquals(Value, other.Value);

    public override bool Equals(object? obj) => obj is PickleKey k && Equals(k);

    public override int GetHashCode() => HashOf(Value);

    private static object? Normalise(object? v) => v switch
    {
        bool b => b ? 1L : 0L,
        double d when d == Math.Floor(d) && Math.Abs(d) < 9e18 => (long)d,
        BigInteger bi when bi >= long.MinValue && bi <= long.MaxValue => (long)bi,
        _ => v,
    };

    private static bool ValueEquals(object? a, object? b)
    {
        a = Normalise(a);
        b = Normalise(b);
        switch (a)
        {
            case null: return b is null;
            case byte[] xb: return b is byte[] yb && xb.AsSpan().SequenceEqual(yb);
            case PickleTuple xt:
                if (b is not PickleTuple yt || xt.Count != yt.Count) return false;
                for (int i = 0; i < xt.Count; i++) if (!ValueEquals(xt[i], yt[i])) return false;
                return true;
            case PickleGlobal xg: return b is PickleGlobal yg && xg.FullName == yg.FullName;
            default: return a.Equals(b);
        }
    }

    private static int HashOf(object? v)
    {
        v = Normalise(v);
        switch (v)
        {
            case null: return 0;
            case byte[] bytes:
                var h = new HashCode();
                h.AddBytes(bytes);
                return h.ToHashCode();
            case PickleTuple t:
                int hash = 17;
                foreach (var item in t) hash = hash * 31 + HashOf(item);
                return hash;
            case PickleGlobal g: return g.FullName.GetHashCode();
            default: return v.GetHashCode();
        }
    }
}
