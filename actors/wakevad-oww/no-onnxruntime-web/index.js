throw new Error('onnxruntime-web is not installed here (actors/wakevad-oww uses onnxruntime-node)');
