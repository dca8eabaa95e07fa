using System.Numerics;
using System.Text.Json;
using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Tests.Sampling;

namespace SharpDiffusion.Engine.Tests.Random;

/// <summary>
/// The torchsde Brownian tree port against samplers/brownian.json / .safetensors (samplers README §5): numpy
/// SeedSequence words, Python round(x, 6), A1111's normal generator, node seeds and increments, interval
/// decompositions and query increments/noise, all bit for bit.
/// </summary>
public class BrownianTreeTests
{
    private static readonly long[] Shape = { 4, 8, 8 };

    private static JsonElement Index()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.GoldenFile("samplers/brownian.json")));
        return doc.RootElement.Clone();
    }

    private static GoldenTensors Tensors() => GoldenTensors.Open("samplers/brownian.safetensors");

    [Fact]
    public void Round6MatchesPythonOnEveryCase()
    {
        var cases = Index().GetProperty("round6_cases").EnumerateArray().ToArray();
        Assert.True(cases.Length >= 20);
        int naiveDiffers = 0;
        foreach (var c in cases)
        {
            double x = c.GetProperty("x").GetDouble(), expected = c.GetProperty("round6").GetDouble();
            Assert.Equal(BitConverter.DoubleToInt64Bits(expected), BitConverter.DoubleToInt64Bits(PythonRounding.Round(x, 6)));
            if (c.GetProperty("naive_round_x_times_1e6").GetDouble() != expected) naiveDiffers++;
        }
        Assert.True(naiveDiffers > 0, "the cases include values where scaling by 1e6 first rounds differently");
    }

    [Fact]
    public void SeedSequencePoolsAndStatesMatchNumpy()
    {
        var cases = Index().GetProperty("seed_sequence_cases").EnumerateArray().ToArray();
        Assert.NotEmpty(cases);
        foreach (var c in cases)
        {
            var spawnKey = c.GetProperty("spawn_key").EnumerateArray().Select(k => new BigInteger(k.GetUInt64())).ToArray();
            var sequence = new NumpySeedSequence(new BigInteger(c.GetProperty("entropy").GetUInt64()), spawnKey, c.GetProperty("pool_size").GetInt32());
            var pool = c.GetProperty("pool").EnumerateArray().Select(v => v.GetUInt32()).ToArray();
            var state = c.GetProperty("generate_state").EnumerateArray().Select(v => v.GetUInt32()).ToArray();
            Assert.Equal(pool, sequence.Pool);
            Assert.Equal(state, sequence.GenerateState(state.Length));
        }
    }

    [Fact]
    public void NormalGeneratorIsTorchCpuRandnPerSeed()
    {
        using var g = Tensors();
        foreach (var seed in Index().GetProperty("randn_local_seeds").EnumerateArray().Select(s => s.GetInt64()))
        {
            using var source = new TorchCpuNoise(seed);
            using var values = source.Randn(Shape);
            Assert.Equal(g.Floats($"randn_local.seed{seed}"), values.data<float>().ToArray());
        }
    }

    [Fact]
    public void NodeSeedsIncrementsAndQueriesAreBitExact()
    {
        var tree = Index().GetProperty("tree");
        double sigmaMin = tree.GetProperty("sigma_min").GetDouble(), sigmaMax = tree.GetProperty("sigma_max").GetDouble();
        var entropy = tree.GetProperty("entropy").GetInt64();
        using var g = Tensors();
        using var brownian = new BrownianNoiseSampler(sigmaMin, sigmaMax, new[] { entropy }, Shape);
        var single = brownian.Trees[0];
        Assert.Equal(tree.GetProperty("top_start").GetDouble(), single.Start);
        Assert.Equal(tree.GetProperty("top_end").GetDouble(), single.End);
        var topSeeds = tree.GetProperty("top_seeds").EnumerateArray().Select(v => v.GetUInt32()).ToArray();
        Assert.Equal(topSeeds, new NumpySeedSequence(entropy).GenerateState(3));
        Assert.Equal(g.Floats("tree.top_w"), single.RootIncrement.data<float>().ToArray());

        var nodes = tree.GetProperty("nodes").EnumerateArray().ToArray();
        using var nodeW = g.Get("tree.node_w");
        Assert.Equal(nodes.Length, nodeW.shape[0]);
        for (int i = 0; i < nodes.Length; i++)
        {
            var node = nodes[i];
            double start = node.GetProperty("start").GetDouble(), end = node.GetProperty("end").GetDouble();
            var seeds = new NumpySeedSequence(entropy, new BigInteger[] { node.GetProperty("spawn_key").GetInt64(), node.GetProperty("depth").GetInt32() }).GenerateState(4);
            Assert.Equal(node.GetProperty("W_seed").GetUInt32(), seeds[0]);
            Assert.Equal(node.GetProperty("right_a_seed").GetUInt32(), seeds[3]);
            Assert.Equal(node.GetProperty("midway").GetDouble(), BrownianTree.Round(0.5 * (end + start)));
            var loc = single.Locate(start, end);
            Assert.Equal(node.GetProperty("path").GetString(), Assert.Single(loc).Path);
            using var w = single.Increment(start, end);
            Assert.Equal(nodeW[i].data<float>().ToArray(), w.data<float>().ToArray());
        }

        var queries = tree.GetProperty("queries").EnumerateArray().ToArray();
        using var queryW = g.Get("tree.query_w");
        using var queryNoise = g.Get("tree.query_noise");
        Assert.Equal(queries.Length, queryW.shape[0]);
        for (int i = 0; i < queries.Length; i++)
        {
            double sigma = queries[i].GetProperty("sigma").GetDouble(), sigmaNext = queries[i].GetProperty("sigma_next").GetDouble();
            var expectedLoc = queries[i].GetProperty("loc")[0];
            var intervals = expectedLoc.GetProperty("intervals").EnumerateArray()
                .Select(v => (v[0].GetString()!, v[1].GetDouble(), v[2].GetDouble())).ToArray();
            Assert.Equal(intervals, single.Locate(Math.Min(sigma, sigmaNext), Math.Max(sigma, sigmaNext)));
            using var w = brownian.Increment(sigma, sigmaNext);
            Assert.Equal(queryW[i].data<float>().ToArray(), w.data<float>().ToArray());
            using var noise = brownian.Noise(sigma, sigmaNext);
            Assert.Equal(queryNoise[i].data<float>().ToArray(), noise.data<float>().ToArray());
        }
    }

    [Fact]
    public void IncrementsDoNotDependOnQueryOrder()
    {
        using var a = new BrownianTree(0.0291675, 14.6146, 7, Shape);
        using var b = new BrownianTree(0.0291675, 14.6146, 7, Shape);
        using var first = a.Increment(1.25, 3.5);
        using var warmup = b.Increment(0.5, 9.75);
        using var second = b.Increment(1.25, 3.5);
        Assert.Equal(first.data<float>().ToArray(), second.data<float>().ToArray());
        using var left = a.Increment(1.25, 2.0);
        using var right = a.Increment(2.0, 3.5);
        using var sum = left + right;
        Assert.True(TensorAssert.MaxAbsDiff(first, sum) < 1e-5);
    }
}
