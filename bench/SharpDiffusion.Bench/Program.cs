using TorchSharp;
var t = torch.randn(new long[] { 4 }, generator: new torch.Generator(42));
Console.WriteLine(string.Join(",", t.data<float>().ToArray()));
return 0;
