namespace SharpDiffusion.Tests.Fixtures.Torch;

/// <summary>Object trees shaped like real files (SD checkpoint, A1111 embedding and hypernetwork, views).</summary>
internal static class TorchFixtures
{
    public sealed record Fixture(object? Root, Dictionary<string, FixtureStorage> Storages)
    {
        public void Write(string path, bool zip)
        {
            if (zip) TorchFixtureWriter.WriteZip(path, Root, Storages);
            else TorchFixtureWriter.WriteLegacy(path, Root, Storages);
        }
    }

    public static float[] Ramp(int n, float start = 0, float step = 1) => Enumerable.Range(0, n).Select(i => start + i * step).ToArray();

    /// <summary>An SD-style .ckpt: state_dict with fp16, fp32, bf16 and int64 tensors, plus global_step/epoch.</summary>
    public static Fixture SdCheckpoint()
    {
        var storages = new Dictionary<string, FixtureStorage>
        {
            ["0"] = FixtureStorage.F16(Ramp(12, -3, 0.5f)),
            ["1"] = FixtureStorage.F32(Ramp(4, 0.25f, 0.25f)),
            ["2"] = FixtureStorage.BF16(1.5f, -2f, 0.125f, 3f, 256f, -0.5f),
            ["3"] = FixtureStorage.I64(49406, 320, 49407),
            ["4"] = FixtureStorage.F64(0.00085, 0.012),
        };
        var sd = new FixtureDict(ordered: true)
        {
            { "model.diffusion_model.input_blocks.0.0.weight", new FixtureTensor("0", 0, [4, 3], [3, 1]) },
            { "model.diffusion_model.input_blocks.0.0.bias", new FixtureTensor("1", 0, [4], [1]) },
            { "first_stage_model.quant_conv.weight", new FixtureTensor("2", 0, [2, 3], [3, 1]) },
            { "cond_stage_model.transformer.text_model.embeddings.position_ids", new FixtureTensor("3", 0, [1, 3], [3, 1]) },
            { "betas", new FixtureTensor("4", 0, [2], [1]) },
        };
        var root = new FixtureDict
        {
            { "epoch", 6L },
            { "global_step", 470000L },
            { "pytorch-lightning_version", "1.4.2" },
            { "state_dict", sd },
        };
        return new Fixture(root, storages);
    }

    /// <summary>An A1111 textual-inversion embedding; <paramref name="numpyStep"/> stores step as a numpy int64.</summary>
    public static Fixture Embedding(bool numpyStep)
    {
        var storages = new Dictionary<string, FixtureStorage> { ["0"] = FixtureStorage.F32(Ramp(2 * 8, -1, 0.125f)) };
        var root = new FixtureDict
        {
            { "string_to_token", new FixtureDict { { "*", 265L } } },
            { "string_to_param", new FixtureDict { { "*", new FixtureTensor("0", 0, [2, 8], [8, 1]) } } },
            { "name", "my-style" },
            { "step", numpyStep ? new FixtureNumpyScalar("i8", BitConverter.GetBytes(1500L)) : 1500L },
            { "sd_checkpoint", "7460a6fa" },
            { "sd_checkpoint_name", "v1-5-pruned-emaonly" },
        };
        return new Fixture(root, storages);
    }

    /// <summary>An A1111 hypernetwork: int keys (768, 1024) to (k, v) state dicts of Linear(d, 2d), Linear(2d, d).</summary>
    public static Fixture Hypernetwork(bool floatLayerStructure)
    {
        var storages = new Dictionary<string, FixtureStorage>();
        var root = new FixtureDict();
        int key = 0;
        foreach (long size in new long[] { 768, 1024 })
        {
            // Tiny stand-in widths: d/256 so the fixture stays small but the keys are the real ones.
            long d = size / 256;
            var pair = new List<object?>();
            foreach (var _ in new[] { "k", "v" })
            {
                var sd = new FixtureDict(ordered: true);
                foreach (var (name, shape) in new (string, long[])[]
                {
                    ("linear.0.weight", [2 * d, d]), ("linear.0.bias", [2 * d]), ("linear.2.weight", [d, 2 * d]), ("linear.2.bias", [d]),
                })
                {
                    string k = (key++).ToString();
                    long n = shape.Aggregate(1L, (a, b) => a * b);
                    storages[k] = FixtureStorage.F32(Ramp((int)n, key, 0.5f));
                    sd.Add(name, new FixtureTensor(k, 0, shape, shape.Length == 2 ? [shape[1], 1] : [1]));
                }
                pair.Add(sd);
            }
            root.Add(size, new FixtureTuple(pair.ToArray()));
        }
        root.Add("step", 0L);
        root.Add("name", "anime");
        root.Add("layer_structure", floatLayerStructure ? new List<object?> { 1.0, 2.0, 1.0 } : new List<object?> { 1L, 2L, 1L });
        root.Add("activation_func", "relu");
        root.Add("is_layer_norm", false);
        root.Add("weight_initialization", "Normal");
        root.Add("sd_checkpoint", null);
        root.Add("sd_checkpoint_name", null);
        root.Add("activate_output", false);
        root.Add("use_dropout", false);
        root.Add("dropout_structure", new List<object?> { 0L, 0.3, 0L });
        return new Fixture(root, storages);
    }

    /// <summary>Views of one 24-float storage: offset, transposed, stride 0 (expand), every other column.</summary>
    public static Fixture Views()
    {
        var storages = new Dictionary<string, FixtureStorage> { ["base"] = FixtureStorage.F32(Ramp(24)) };
        var root = new FixtureDict(ordered: true)
        {
            { "whole", new FixtureTensor("base", 0, [4, 6], [6, 1]) },
            { "offset", new FixtureTensor("base", 5, [2, 3], [3, 1]) },
            { "transposed", new FixtureTensor("base", 0, [6, 4], [1, 6]) },
            { "expanded", new FixtureTensor("base", 2, [3, 4], [0, 1]) },
            { "every_other", new FixtureTensor("base", 1, [4, 3], [6, 2]) },
            { "scalar", new FixtureTensor("base", 23, [], []) },
            { "empty", new FixtureTensor("base", 0, [0, 5], [5, 1]) },
        };
        return new Fixture(root, storages);
    }
}
