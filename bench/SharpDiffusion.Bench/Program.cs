Console.WriteLine("SharpDiffusion benchmarks: see bench/README.md");
return 0;
