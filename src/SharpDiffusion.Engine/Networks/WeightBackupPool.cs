using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Networks;

/// <summary>
/// The copies <see cref="NetworkPatcher"/> keeps of weights it changes, in the weights' own dtype, with their buffers
/// kept between jobs: the next job that patches the same weights copies into memory it already owns instead of
/// allocating (and page-faulting) hundreds of MB again. <see cref="ReleaseUnused"/> frees what the last job did not
/// need, so the pool holds at most one copy of the weights the latest job touched (per network stacked on a weight).
/// </summary>
public sealed class WeightBackupPool : IDisposable
{
    private readonly Dictionary<string, List<Tensor>> _spare = new(StringComparer.Ordinal);
    private readonly HashSet<Tensor> _usedSinceRelease = new(ReferenceEqualityComparer.Instance);

    /// <summary>Bytes of spare buffers currently held.</summary>
    public long SpareBytes => _spare.Values.Sum(list => list.Sum(t => t.NumberOfElements * t.ElementSize));

    /// <summary>A copy of <paramref name="live"/> (bitwise), in a buffer from the pool when one of its shape and dtype is spare.</summary>
    public Tensor Save(string key, Tensor live)
    {
        Tensor? buffer = null;
        if (_spare.TryGetValue(key, out var list))
        {
            int i = list.FindIndex(t => t.dtype == live.dtype && t.device_type == live.device_type && t.device_index == live.device_index && t.shape.SequenceEqual(live.shape));
            if (i >= 0)
            {
                buffer = list[i];
                list.RemoveAt(i);
            }
        }
        buffer ??= empty_like(live);
        buffer.copy_(live);
        _usedSinceRelease.Add(buffer);
        return buffer;
    }

    /// <summary>Takes a buffer back after its values were restored (it stays allocated for the next job).</summary>
    public void Return(string key, Tensor buffer)
    {
        if (!_spare.TryGetValue(key, out var list)) _spare[key] = list = new List<Tensor>();
        list.Add(buffer);
    }

    /// <summary>Frees the spare buffers no job has used since the previous call.</summary>
    public void ReleaseUnused()
    {
        foreach (var list in _spare.Values)
        {
            list.RemoveAll(t =>
            {
                if (_usedSinceRelease.Contains(t)) return false;
                t.Dispose();
                return true;
            });
        }
        _usedSinceRelease.Clear();
    }

    /// <summary>Frees every spare buffer (buffers still out with a patcher are the patcher's to return).</summary>
    public void Dispose()
    {
        foreach (var list in _spare.Values)
            foreach (var t in list) t.Dispose();
        _spare.Clear();
        _usedSinceRelease.Clear();
    }
}
